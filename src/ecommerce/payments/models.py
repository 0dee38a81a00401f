from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# A card payment as the shop knows it (docs/architecture.md, "Card payments"):
#   READY       created with its order or charge; the customer is at the gateway's checkout
#   CONFIRMING  the gateway was asked to confirm and has not answered (yet)
#   DONE        approved: the card was charged
#   FAILED      declined, or the gateway holds no approval for it
#   EXPIRED     never confirmed before its hold ended
#   CANCEL_PENDING  a refund is being asked of the gateway (retried until it answers)
#   CANCELLED   refunded
STATUSES = ("READY", "CONFIRMING", "DONE", "FAILED", "EXPIRED", "CANCEL_PENDING", "CANCELLED")
KINDS = ("ORDER", "CHARGE")

payments = Table(
    "payments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("order_id", BigId, ForeignKey("orders.id"), nullable=True),
    Column("pg_order_id", String(64), nullable=False),  # our id at the gateway
    Column("payment_key", String(200), nullable=True),  # the gateway's, from its checkout
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64), nullable=True),
    Column("failure_message", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("attempted_at", UtcDateTime, nullable=True),  # when the gateway was last asked
    Column("approved_at", UtcDateTime, nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    CheckConstraint(f"kind IN ({', '.join(repr(k) for k in KINDS)})", name="kind"),
    CheckConstraint("amount > 0", name="amount"),
    Index("ix_payments_pg_order_id", "pg_order_id", unique=True),
    Index("ix_payments_order_id", "order_id", unique=True),
    Index("ix_payments_status_expires_at", "status", "expires_at"),
)
