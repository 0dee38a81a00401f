from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

coupons = Table(
    "coupons",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("discount_type", String(8), nullable=False),
    Column("discount_value", BigInteger, nullable=False),
    Column("max_discount_amount", BigInteger, nullable=True),
    Column("min_order_amount", BigInteger, nullable=False),
    Column("total_quantity", BigInteger, nullable=False),
    Column("issued_quantity", BigInteger, nullable=False),
    Column("issue_starts_at", UtcDateTime, nullable=False),
    Column("issue_ends_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("valid_days", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("issued_quantity >= 0 AND issued_quantity <= total_quantity",
                    name="issued_within_total"),
    CheckConstraint("discount_type IN ('FIXED', 'PERCENT')", name="discount_type"),
    CheckConstraint("expires_at IS NOT NULL OR valid_days IS NOT NULL", name="has_expiry"),
)

user_coupons = Table(
    "user_coupons",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("coupon_id", BigId, ForeignKey("coupons.id"), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("order_id", BigId, nullable=True),
    UniqueConstraint("coupon_id", "user_id"),
    CheckConstraint("status IN ('AVAILABLE', 'USED')", name="status"),
    Index("ix_user_coupons_user_id", "user_id", "id"),
    Index("ix_user_coupons_order_id", "order_id"),
)

# The coupon ledger: every change of a held coupon's state, in the same transaction.
coupon_events = Table(
    "coupon_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_coupon_id", BigId, nullable=False),
    Column("coupon_id", BigId, nullable=False),
    Column("user_id", BigId, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("order_id", BigId, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('ISSUED', 'USED', 'RESTORED')", name="kind"),
    Index("ix_coupon_events_user_coupon_id", "user_coupon_id"),
)
