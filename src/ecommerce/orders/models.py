from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Table

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# The order's life (docs/architecture.md, "Card payments"): a balance order is PAID at
# once; a card order is PAYMENT_PENDING (holding its stock, coupon and balance part) until
# the gateway confirms (PAID), declines (PAYMENT_FAILED) or does not answer
# (PAYMENT_UNKNOWN, settled from a read-back), its hold ends (EXPIRED), or its customer
# cancels it (CANCELLED, never paid: `paid_at` is null). A paid card order is
# CANCEL_PENDING while its refund is asked of the gateway.
STATUSES = ("PAID", "CANCELLED", "PAYMENT_PENDING", "PAYMENT_UNKNOWN", "PAYMENT_FAILED",
            "EXPIRED", "CANCEL_PENDING")
HOLDING = ("PAYMENT_PENDING", "PAYMENT_UNKNOWN")  # unpaid, holding stock, coupon, balance
RELEASED = ("PAYMENT_FAILED", "EXPIRED")  # unpaid, everything given back (and CANCELLED
#                                          when its customer cancelled it unpaid)

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
    # When it became PAID (at once for a balance order, at the approval for a card one);
    # an order cancelled before it was paid has none.
    Column("paid_at", UtcDateTime, nullable=True),
    # BALANCE: paid from the balance at once. CARD: `balance_amount` from the balance and
    # `card_amount` through the gateway (payments/), held while PAYMENT_PENDING.
    Column("payment_method", String(8), nullable=False, server_default="BALANCE"),
    Column("balance_amount", BigInteger, nullable=False, server_default="0"),
    Column("card_amount", BigInteger, nullable=False, server_default="0"),
    CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    CheckConstraint("paid_amount = total_price - discount_amount AND paid_amount >= 0 "
                    "AND discount_amount >= 0", name="amounts"),
    CheckConstraint("balance_amount >= 0 AND card_amount >= 0 "
                    "AND balance_amount + card_amount = paid_amount", name="split"),
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
