"""keyed orders in one call: shop_place_order writes the order's Idempotency-Key too

On PostgreSQL `shop_place_order` is replaced by its version that also writes the order's
Idempotency-Key row with its answer (frozen in `migrations/sql/0012_shop_place_order.sql`),
so a keyed order is one statement and holds no row lock across a round trip (decision 77).
Nothing else changes; on SQLite and MySQL this revision does nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0011', 'shop_place_order')}")
        op.execute(applied("0012", "shop_place_order"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0012', 'shop_place_order')}")
        op.execute(applied("0011", "shop_place_order"))
