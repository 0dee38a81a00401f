"""accounts and wallet

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 10:41:16.460636
"""
import sqlalchemy as sa
from alembic import op

import ecommerce.platform.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_idempotency_keys_user_id_key'))
    )
    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint("role IN ('CUSTOMER', 'ADMIN')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('balance_ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint("type IN ('RECHARGE', 'PAYMENT', 'REFUND')", name=op.f('ck_balance_ledger_type')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_balance_ledger_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_balance_ledger'))
    )
    with op.batch_alter_table('balance_ledger', schema=None) as batch_op:
        batch_op.create_index('ix_balance_ledger_order_id', ['order_id'], unique=False)
        batch_op.create_index('ix_balance_ledger_user_id_id', ['user_id', 'id'], unique=False)

    op.create_table('wallets',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_wallets_balance_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_wallets_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_wallets'))
    )


def downgrade() -> None:
    op.drop_table('wallets')
    with op.batch_alter_table('balance_ledger', schema=None) as batch_op:
        batch_op.drop_index('ix_balance_ledger_user_id_id')
        batch_op.drop_index('ix_balance_ledger_order_id')

    op.drop_table('balance_ledger')
    op.drop_table('users')
    op.drop_table('idempotency_keys')
