"""Local stand-ins for the services around the shop, for development and tests only (the
product never imports them): `ecommerce dev-pg` (a card gateway with the Toss Payments v1
API shape and a checkout page), `ecommerce dev-mail` (an SMTP server that keeps and shows
what it receives) and `ecommerce dev-sink` (a data platform that records the events it
receives). Shipped in the wheel, so an installed shop can be tried end to end."""
