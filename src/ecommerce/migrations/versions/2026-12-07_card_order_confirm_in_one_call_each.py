"""a card order's confirm in two calls: shop_card_order_confirming and shop_card_order_paid

On PostgreSQL `shop_card_order_confirming` (orders/card_confirming.sql) begins a card
order's confirm in one statement (the payment CONFIRMING, the order PAYMENT_UNKNOWN) and
`shop_card_order_paid` (orders/card_paid.sql) applies its approval in one: the payment
DONE, the order PAID, the wallet's unpaid count, the held units, the day's sales and
`order.completed` (decision 83); each frozen in `migrations/sql/0013_<function>.sql`.
Nothing else changes; on SQLite and MySQL this revision does nothing.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 03:00:00
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied

        op.execute(applied("0013", "shop_card_order_confirming"))
        op.execute(applied("0013", "shop_card_order_paid"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0013', 'shop_card_order_paid')}")
        op.execute("DROP FUNCTION IF EXISTS "
                   f"{signature('0013', 'shop_card_order_confirming')}")
