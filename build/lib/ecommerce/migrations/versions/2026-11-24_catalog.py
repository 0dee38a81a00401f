"""catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:50:03.069899
"""
from alembic import op
import sqlalchemy as sa
import ecommerce.platform.types


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('generation', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_state'))
    )
    op.create_table('categories',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('slug', name=op.f('uq_categories_slug'))
    )
    op.create_table('products',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('category_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('stock', sa.BigInteger(), nullable=False),
    sa.Column('sold_quantity', sa.BigInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('updated_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint('price >= 1 AND price <= 100000000', name=op.f('ck_products_price_range')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_products_stock_not_negative')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_products_category_id_categories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_active_created', ['active', 'created_at'], unique=False)
        batch_op.create_index('ix_products_active_name', ['active', 'name'], unique=False)
        batch_op.create_index('ix_products_active_price', ['active', 'price'], unique=False)
        batch_op.create_index('ix_products_active_sold', ['active', 'sold_quantity'], unique=False)
        batch_op.create_index('ix_products_category_active', ['category_id', 'active'], unique=False)

    op.create_table('product_sales_daily',
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('quantity', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_sales_daily_product_id_products')),
    sa.PrimaryKeyConstraint('product_id', 'day', name=op.f('pk_product_sales_daily'))
    )
    with op.batch_alter_table('product_sales_daily', schema=None) as batch_op:
        batch_op.create_index('ix_product_sales_daily_day', ['day'], unique=False)

    op.create_table('stock_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('product_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('delta', sa.BigInteger(), nullable=False),
    sa.Column('stock_after', sa.BigInteger(), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('INITIAL', 'RESTOCK', 'WRITE_OFF', 'SALE', 'CANCEL')", name=op.f('ck_stock_movements_kind')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_movements_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_movements'))
    )
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.create_index('ix_stock_movements_product_id', ['product_id'], unique=False)


    op.execute("INSERT INTO catalog_state (id, generation) VALUES (1, 0)")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and bind.execute(sa.text(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).scalar():
        # Trigram index: keyword search is a case-insensitive substring match.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_products_search_trgm ON products "
                   "USING gin (search_text gin_trgm_ops)")

def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
    with op.batch_alter_table('stock_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_stock_movements_product_id')

    op.drop_table('stock_movements')
    with op.batch_alter_table('product_sales_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_product_sales_daily_day')

    op.drop_table('product_sales_daily')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_category_active')
        batch_op.drop_index('ix_products_active_sold')
        batch_op.drop_index('ix_products_active_price')
        batch_op.drop_index('ix_products_active_name')
        batch_op.drop_index('ix_products_active_created')

    op.drop_table('products')
    op.drop_table('categories')
    op.drop_table('catalog_state')
