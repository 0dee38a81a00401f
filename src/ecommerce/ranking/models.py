from sqlalchemy import BigInteger, Column, Date, ForeignKey, Index, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId

# Units sold per product per shop-calendar day; cancellations subtract from the sale's day.
product_sales_daily = Table(
    "product_sales_daily",
    metadata,
    Column("product_id", BigId, ForeignKey("products.id"), primary_key=True,
           autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    Index("ix_product_sales_daily_day", "day"),
)
