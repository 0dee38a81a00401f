"""card payments: an order's payment method and split, the payments table

Orders get `payment_method` (BALANCE, CARD), `balance_amount` and `card_amount` (their sum
is `paid_amount`; existing orders were paid from the balance) and the card states
(PAYMENT_PENDING, PAYMENT_UNKNOWN, PAYMENT_FAILED, EXPIRED, CANCEL_PENDING). `payments`
holds each card payment of an order or a balance charge as the shop knows it; a recharge by
card names its payment in the ledger (once: a unique index). On PostgreSQL
`shop_place_order` is replaced by its version that places card orders too (frozen in
`migrations/sql/0008_shop_place_order.sql`; the downgrade puts 0006's back).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 00:00:00
"""
import sqlalchemy as sa
from alembic import op

import ecommerce.platform.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
ORDER_STATUSES = ("status IN ('PAID', 'CANCELLED', 'PAYMENT_PENDING', 'PAYMENT_UNKNOWN', "
                  "'PAYMENT_FAILED', 'EXPIRED', 'CANCEL_PENDING')")


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_method', sa.String(length=8),
                                      server_default='BALANCE', nullable=False))
        batch_op.add_column(sa.Column('balance_amount', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('card_amount', sa.BigInteger(), server_default='0',
                                      nullable=False))
    op.execute("UPDATE orders SET balance_amount = paid_amount")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status'), ORDER_STATUSES)
        batch_op.create_check_constraint(op.f('ck_orders_split'), 'balance_amount >= 0 AND card_amount >= 0 '
            'AND balance_amount + card_amount = paid_amount')

    with op.batch_alter_table('balance_ledger', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payment_id', BigId, nullable=True))
        batch_op.create_index('ix_balance_ledger_payment_id', ['payment_id'], unique=True)

    op.create_table('payments',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('user_id', BigId, nullable=False),
    sa.Column('order_id', BigId, nullable=True),
    sa.Column('pg_order_id', sa.String(length=64), nullable=False),
    sa.Column('payment_key', sa.String(length=200), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure_code', sa.String(length=64), nullable=True),
    sa.Column('failure_message', sa.String(length=255), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('expires_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('attempted_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('approved_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('cancelled_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('READY', 'CONFIRMING', 'DONE', 'FAILED', 'EXPIRED', "
                       "'CANCEL_PENDING', 'CANCELLED')", name=op.f('ck_payments_status')),
    sa.CheckConstraint("kind IN ('ORDER', 'CHARGE')", name=op.f('ck_payments_kind')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payments_amount')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'],
                            name=op.f('fk_payments_order_id_orders')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_payments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_pg_order_id', ['pg_order_id'], unique=True)
        batch_op.create_index('ix_payments_order_id', ['order_id'], unique=True)
        batch_op.create_index('ix_payments_status_expires_at', ['status', 'expires_at'],
                              unique=False)

    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0006', 'shop_place_order')}")
        op.execute(applied("0008", "shop_place_order"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0008', 'shop_place_order')}")
    op.drop_table('payments')
    with op.batch_alter_table('balance_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_balance_ledger_payment_id')
        batch_op.drop_column('payment_id')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_split'), type_='check')
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status'), "status IN ('PAID', 'CANCELLED')")
        batch_op.drop_column('card_amount')
        batch_op.drop_column('balance_amount')
        batch_op.drop_column('payment_method')
    if op.get_bind().dialect.name == "postgresql":  # the shop of 0007 writes orders with it
        op.execute(applied("0006", "shop_place_order"))
