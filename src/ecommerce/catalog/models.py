from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

MAX_STOCK = 1_000_000_000  # a product's stock never passes this (SPEC: restock 400)

categories = Table(
    "categories",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("category_id", BigId, ForeignKey("categories.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    # lower(name + " " + description), kept by the service: what keyword search scans.
    # Lower-cased by the service; compared byte for byte (binary collation on MySQL).
    Column("search_text", Text().with_variant(mysql.TEXT(collation="utf8mb4_bin"), "mysql"),
           nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("sold_quantity", BigInteger, nullable=False, default=0),
    # Of the units taken from `stock`, those held by card orders not paid yet: together
    # they may hold at most PAYMENT_PENDING_STOCK_PERCENT of what is left (the rest stays
    # for buyers who pay at once).
    Column("held", BigInteger, nullable=False, default=0, server_default="0"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("stock >= 0", name="stock_not_negative"),
    CheckConstraint("held >= 0", name="held_not_negative"),
    CheckConstraint("price >= 1 AND price <= 100000000", name="price_range"),
    Index("ix_products_active_created", "active", "created_at"),
    Index("ix_products_active_price", "active", "price"),
    Index("ix_products_active_name", "active", "name"),
    Index("ix_products_active_sold", "active", "sold_quantity"),
    Index("ix_products_category_active", "category_id", "active"),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("product_id", BigId, ForeignKey("products.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("stock_after", BigInteger, nullable=False),
    Column("order_id", BigId, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('INITIAL', 'RESTOCK', 'WRITE_OFF', 'SALE', 'CANCEL')", name="kind"),
    Index("ix_stock_movements_product_id", "product_id"),
)

# One row: bumped in the same transaction as any change to what a listing would show,
# when there is no Redis to hold the catalog's generation.
catalog_state = Table(
    "catalog_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("generation", BigInteger, nullable=False),
)
