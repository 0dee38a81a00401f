"""coupons

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:55:37.911177
"""
from alembic import op
import sqlalchemy as sa
import ecommerce.platform.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coupon_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('ISSUED', 'USED', 'RESTORED')", name=op.f('ck_coupon_events_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_events'))
    )
    with op.batch_alter_table('coupon_events', schema=None) as batch_op:
        batch_op.create_index('ix_coupon_events_user_coupon_id', ['user_coupon_id'], unique=False)

    op.create_table('coupons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('discount_type', sa.String(length=8), nullable=False),
    sa.Column('discount_value', sa.BigInteger(), nullable=False),
    sa.Column('max_discount_amount', sa.BigInteger(), nullable=True),
    sa.Column('min_order_amount', sa.BigInteger(), nullable=False),
    sa.Column('total_quantity', sa.BigInteger(), nullable=False),
    sa.Column('issued_quantity', sa.BigInteger(), nullable=False),
    sa.Column('issue_starts_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('issue_ends_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('expires_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('valid_days', sa.Integer(), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint("discount_type IN ('FIXED', 'PERCENT')", name=op.f('ck_coupons_discount_type')),
    sa.CheckConstraint('expires_at IS NOT NULL OR valid_days IS NOT NULL', name=op.f('ck_coupons_has_expiry')),
    sa.CheckConstraint('issued_quantity >= 0 AND issued_quantity <= total_quantity', name=op.f('ck_coupons_issued_within_total')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    op.create_table('user_coupons',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('coupon_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('issued_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('expires_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('used_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint("status IN ('AVAILABLE', 'USED')", name=op.f('ck_user_coupons_status')),
    sa.ForeignKeyConstraint(['coupon_id'], ['coupons.id'], name=op.f('fk_user_coupons_coupon_id_coupons')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_coupons_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_coupons')),
    sa.UniqueConstraint('coupon_id', 'user_id', name=op.f('uq_user_coupons_coupon_id_user_id'))
    )
    with op.batch_alter_table('user_coupons', schema=None) as batch_op:
        batch_op.create_index('ix_user_coupons_order_id', ['order_id'], unique=False)
        batch_op.create_index('ix_user_coupons_user_id', ['user_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('user_coupons', schema=None) as batch_op:
        batch_op.drop_index('ix_user_coupons_user_id')
        batch_op.drop_index('ix_user_coupons_order_id')

    op.drop_table('user_coupons')
    op.drop_table('coupons')
    with op.batch_alter_table('coupon_events', schema=None) as batch_op:
        batch_op.drop_index('ix_coupon_events_user_coupon_id')

    op.drop_table('coupon_events')
