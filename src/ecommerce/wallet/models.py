from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# Recharges may not take a balance past this; refunds may (a refund is never refused).
BALANCE_CAP = 100_000_000

wallets = Table(
    "wallets",
    metadata,
    Column("user_id", BigId, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("balance", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Card orders of this user not paid yet (at most PAYMENT_PENDING_PER_USER): kept on the
    # wallet row, which every order of the user locks anyway, so the bound is exact.
    Column("unpaid_card_orders", Integer, nullable=False, default=0, server_default="0"),
    CheckConstraint("balance >= 0", name="balance_not_negative"),
    CheckConstraint("unpaid_card_orders >= 0", name="unpaid_card_orders_not_negative"),
)

balance_ledger = Table(
    "balance_ledger",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("order_id", BigId, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # A recharge paid by card: its payment (payments.id), so it is credited once.
    Column("payment_id", BigId, nullable=True),
    CheckConstraint("type IN ('RECHARGE', 'PAYMENT', 'REFUND')", name="type"),
    Index("ix_balance_ledger_user_id_id", "user_id", "id"),
    Index("ix_balance_ledger_order_id", "order_id"),
    Index("ix_balance_ledger_payment_id", "payment_id", unique=True),
)
