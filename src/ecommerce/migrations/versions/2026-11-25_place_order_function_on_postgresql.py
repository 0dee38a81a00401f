"""an order's writes as one PostgreSQL function

`shop_place_order` applies an order that the service has already priced and checked: the
held coupon, the balance and its ledger entry, the order, the stock of every line (guarded
by the quoted price) and its movement, the items, the day's sales and the outbox event, all
in one call. The rules (prices, discount, which coupon, what the event says) stay in Python;
the function only writes, each write guarded the way the portable path guards it, and
raises `shop:<REASON>` (SQLSTATE P0001), which rolls all of it back (docs/decisions.md 30).
The SQL it applied is frozen in `migrations/sql/0006_shop_place_order.sql`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 10:00:00
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None



def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied

        op.execute(applied("0006", "shop_place_order"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS shop_place_order")
