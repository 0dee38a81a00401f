"""card safety: stray approvals, voided payments, bounded holds, paid_at, token versions

- `stray_approvals`: approvals the gateway holds under a key the shop never confirmed,
  each refunded (retried until the gateway has done it).
- Payments may be VOIDED (the customer cancelled an unpaid card order: nothing charged).
- `wallets.unpaid_card_orders` and `products.held` count what unpaid card orders hold,
  so a customer's unpaid orders and their share of a product's units are bounded exactly;
  both are counted from the orders that hold now.
- `orders.paid_at`: when an order was paid (a balance order when placed, a card order at
  its approval); a cancelled order without one was never paid.
- Ledger entries of 0 won are gone (they moved no money): an order without a balance part
  has no PAYMENT entry, nor a REFUND.
- `users.token_version` (+ when it changed): a password or role change revokes tokens.
- On PostgreSQL `shop_place_order` is replaced by its version that counts and bounds the
  holds and stamps `paid_at` (frozen in `migrations/sql/0011_shop_place_order.sql`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 12:00:00
"""
import sqlalchemy as sa
from alembic import op

import ecommerce.platform.types

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
HOLDING = "('PAYMENT_PENDING', 'PAYMENT_UNKNOWN')"
PAYMENT_STATUSES = ("status IN ('READY', 'CONFIRMING', 'DONE', 'FAILED', 'EXPIRED', "
                    "'VOIDED', 'CANCEL_PENDING', 'CANCELLED')")
PAYMENT_STATUSES_0008 = ("status IN ('READY', 'CONFIRMING', 'DONE', 'FAILED', 'EXPIRED', "
                         "'CANCEL_PENDING', 'CANCELLED')")


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_version', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('token_changed_at',
                                      ecommerce.platform.types.UtcDateTime(), nullable=True))
        batch_op.create_index('ix_users_token_changed_at', ['token_changed_at'], unique=False)

    with op.batch_alter_table('wallets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unpaid_card_orders', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_wallets_unpaid_card_orders_not_negative'),
                                         'unpaid_card_orders >= 0')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('held', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.create_check_constraint(op.f('ck_products_held_not_negative'), 'held >= 0')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_at', ecommerce.platform.types.UtcDateTime(),
                                      nullable=True))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_status'), PAYMENT_STATUSES)

    op.create_table('stray_approvals',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('payment_id', BigId, nullable=False),
    sa.Column('payment_key', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('found_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('attempted_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('refunded_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('REFUNDING', 'REFUNDED')",
                       name=op.f('ck_stray_approvals_status')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'],
                            name=op.f('fk_stray_approvals_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stray_approvals'))
    )
    with op.batch_alter_table('stray_approvals', schema=None) as batch_op:
        batch_op.create_index('ix_stray_approvals_payment_key', ['payment_key'], unique=True)
        batch_op.create_index('ix_stray_approvals_status_attempted_at',
                              ['status', 'attempted_at'], unique=False)

    # What is paid, and when; what unpaid card orders hold; no ledger entry of 0.
    op.execute("UPDATE orders SET paid_at = created_at WHERE payment_method = 'BALANCE' "
               "AND status IN ('PAID', 'CANCELLED')")
    op.execute("UPDATE orders SET paid_at = COALESCE((SELECT approved_at FROM payments "
               "WHERE payments.order_id = orders.id), created_at) "
               "WHERE payment_method = 'CARD' "
               "AND status IN ('PAID', 'CANCEL_PENDING', 'CANCELLED')")
    op.execute("UPDATE wallets SET unpaid_card_orders = (SELECT COUNT(*) FROM orders "
               "WHERE orders.user_id = wallets.user_id AND orders.payment_method = 'CARD' "
               f"AND orders.status IN {HOLDING})")
    op.execute("UPDATE products SET held = COALESCE((SELECT SUM(order_items.quantity) "
               "FROM order_items JOIN orders ON orders.id = order_items.order_id "
               "WHERE order_items.product_id = products.id "
               f"AND orders.payment_method = 'CARD' AND orders.status IN {HOLDING}), 0)")
    op.execute("DELETE FROM balance_ledger WHERE amount = 0 "
               "AND type IN ('PAYMENT', 'REFUND')")

    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0010', 'shop_place_order')}")
        op.execute(applied("0011", "shop_place_order"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied, signature

        op.execute(f"DROP FUNCTION IF EXISTS {signature('0011', 'shop_place_order')}")
        op.execute(applied("0010", "shop_place_order"))
    # 0010's shop: every order has one PAYMENT entry (of 0 when nothing came from the
    # balance), and one REFUND if it gave the balance part back; an order cancelled
    # before it was paid did not exist there: it is an expired one.
    op.execute("INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, "
               "created_at) SELECT orders.user_id, 'PAYMENT', 0, wallets.balance, orders.id, "
               "orders.created_at FROM orders JOIN wallets ON wallets.user_id = "
               "orders.user_id WHERE orders.balance_amount = 0")
    op.execute("UPDATE orders SET status = 'EXPIRED' WHERE status = 'CANCELLED' "
               "AND paid_at IS NULL")
    op.execute("INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, "
               "created_at) SELECT orders.user_id, 'REFUND', 0, wallets.balance, orders.id, "
               "COALESCE(orders.cancelled_at, orders.created_at) FROM orders JOIN wallets "
               "ON wallets.user_id = orders.user_id WHERE orders.balance_amount = 0 "
               "AND orders.status IN ('CANCELLED', 'PAYMENT_FAILED', 'EXPIRED')")
    op.execute("UPDATE payments SET status = 'EXPIRED' WHERE status = 'VOIDED'")

    with op.batch_alter_table('stray_approvals', schema=None) as batch_op:
        batch_op.drop_index('ix_stray_approvals_status_attempted_at')
        batch_op.drop_index('ix_stray_approvals_payment_key')
    op.drop_table('stray_approvals')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_payments_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_payments_status'), PAYMENT_STATUSES_0008)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('paid_at')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_products_held_not_negative'), type_='check')
        batch_op.drop_column('held')
    with op.batch_alter_table('wallets', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_wallets_unpaid_card_orders_not_negative'),
                                 type_='check')
        batch_op.drop_column('unpaid_card_orders')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_token_changed_at')
        batch_op.drop_column('token_changed_at')
        batch_op.drop_column('token_version')
