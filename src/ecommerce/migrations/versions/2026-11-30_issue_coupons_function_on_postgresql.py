"""a batch of coupon claims' writes as one PostgreSQL function

`shop_issue_coupons` writes the winners of a batch of claims that the service has already
decided: the issued count (guarded: that many left, the claim window open), a holder row
and an ISSUED ledger entry each, in one call (docs/decisions.md 49). The SQL it applied is
frozen in `migrations/sql/0007_shop_issue_coupons.sql`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:00:00
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied

        op.execute(applied("0007", "shop_issue_coupons"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS shop_issue_coupons")
