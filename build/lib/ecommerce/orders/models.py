from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

orders = Table(
    "orders",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_price", BigInteger, nullable=False),
    Column("discount_amount", BigInteger, nullable=False),
    Column("paid_amount", BigInteger, nullable=False),
    Column("coupon_code", String(40), nullable=True),
    Column("user_coupon_id", BigId, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("cancelled_at", UtcDateTime, nullable=True),
    CheckConstraint("status IN ('PAID', 'CANCELLED')", name="status"),
    CheckConstraint("paid_amount = total_price - discount_amount AND paid_amount >= 0 "
                    "AND discount_amount >= 0", name="amounts"),
    Index("ix_orders_user_id_id", "user_id", "id"),
    Index("ix_orders_status_id", "status", "id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("order_id", BigId, ForeignKey("orders.id"), nullable=False),
    Column("product_id", BigId, ForeignKey("products.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("line_total", BigInteger, nullable=False),
    CheckConstraint("quantity > 0 AND line_total = unit_price * quantity", name="line"),
    Index("ix_order_items_order_id", "order_id"),
)
