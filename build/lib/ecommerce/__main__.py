from ecommerce.cli import main

main()
