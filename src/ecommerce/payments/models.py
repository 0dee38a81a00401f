from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# A card payment as the shop knows it (payments/machine.py, docs/architecture.md):
#   READY       created with what it pays for; the customer is at the gateway's checkout
#   CONFIRMING  the gateway was asked to confirm it with `payment_key` (the key the shop
#               confirmed with, stored before the call) and has not answered (yet)
#   DONE        approved under that key and applied (an order paid, a balance credited)
#   FAILED      declined, or the gateway holds no approval for that key
#   EXPIRED     never confirmed before its hold ended
#   VOIDED      the customer cancelled it before paying: nothing was charged
#   CANCEL_PENDING  a refund of `payment_key`'s approval is being asked of the gateway
#   CANCELLED   refunded
STATUSES = ("READY", "CONFIRMING", "DONE", "FAILED", "EXPIRED", "VOIDED", "CANCEL_PENDING",
            "CANCELLED")
KINDS = ("ORDER", "CHARGE")

payments = Table(
    "payments",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("order_id", BigId, ForeignKey("orders.id"), nullable=True),
    Column("pg_order_id", String(64), nullable=False),  # our id at the gateway
    Column("payment_key", String(200), nullable=True),  # the one the shop confirmed with
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

# An approval the gateway holds for one of our gateway order ids under a key the shop never
# confirmed with (a second checkout tab confirmed by another system, say): never the
# shop's to keep, so it is refunded, retried until the gateway has done it.
#   REFUNDING  found; its refund is being asked of the gateway
#   REFUNDED   the gateway refunded it
STRAY_STATUSES = ("REFUNDING", "REFUNDED")

stray_approvals = Table(
    "stray_approvals",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("payment_id", BigId, ForeignKey("payments.id"), nullable=False),
    Column("payment_key", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("found_at", UtcDateTime, nullable=False),
    Column("attempted_at", UtcDateTime, nullable=False),  # when a refund was last asked
    Column("refunded_at", UtcDateTime, nullable=True),
    CheckConstraint(f"status IN ({', '.join(repr(s) for s in STRAY_STATUSES)})",
                    name="status"),
    Index("ix_stray_approvals_payment_key", "payment_key", unique=True),
    Index("ix_stray_approvals_status_attempted_at", "status", "attempted_at"),
)
