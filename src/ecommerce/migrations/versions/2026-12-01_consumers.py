"""consumers: each consumer's deliveries and outbox cursor; the outbox keeps only publishing

The data platform's delivery state moves from the outbox's own columns (status, attempts,
last_error, delivered_at) into `consumer_deliveries` as the `data-platform` consumer's rows:
DELIVERED becomes HANDLED, FAILED becomes DEAD (still retried slowly while young), a
PENDING event already tried becomes RETRY. Both consumers' cursors start where the outbox
stands (the data platform's just before its oldest undelivered event); the events already
there are settled for the e-mail consumer untouched ("before e-mail"), so an upgraded shop
never e-mails its past orders. The outbox keeps `next_attempt_at`, `lease`,
`locked_until` and `streamed_at` for publishing to the Redis stream. On PostgreSQL
`shop_place_order` is replaced by its version that writes the slimmer outbox row (frozen in
`migrations/sql/0010_shop_place_order.sql`; the downgrade puts 0008's back).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:00:00
"""
import sqlalchemy as sa
from alembic import op

import ecommerce.platform.types

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
CONSUMERS = ("data-platform", "email")


def upgrade() -> None:
    op.create_table('consumer_deliveries',
    sa.Column('consumer', sa.String(length=40), nullable=False),
    sa.Column('outbox_id', BigId, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('lease', sa.String(length=32), nullable=True),
    sa.Column('locked_until', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=80), nullable=True),
    sa.Column('created_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.Column('handled_at', ecommerce.platform.types.UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('consumer', 'outbox_id', name=op.f('pk_consumer_deliveries'))
    )
    with op.batch_alter_table('consumer_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_consumer_deliveries_due',
                              ['consumer', 'status', 'next_attempt_at'], unique=False)
    op.create_table('consumer_cursors',
    sa.Column('consumer', sa.String(length=40), nullable=False),
    sa.Column('position', BigId, nullable=False),
    sa.Column('updated_at', ecommerce.platform.types.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('consumer', name=op.f('pk_consumer_cursors'))
    )

    # The data platform's state so far, as its consumer's rows.
    op.execute("""
        INSERT INTO consumer_deliveries (consumer, outbox_id, event_id, status, attempts,
            next_attempt_at, last_error, outcome, created_at, handled_at)
        SELECT 'data-platform', id, event_id,
               CASE status WHEN 'DELIVERED' THEN 'HANDLED' WHEN 'FAILED' THEN 'DEAD'
                    ELSE 'RETRY' END,
               attempts,
               CASE status WHEN 'DELIVERED' THEN NULL ELSE next_attempt_at END,
               last_error,
               CASE status WHEN 'DELIVERED' THEN 'delivered' ELSE NULL END,
               created_at, delivered_at
        FROM outbox
        WHERE status IN ('DELIVERED', 'FAILED') OR attempts > 0""")
    op.execute("""
        INSERT INTO consumer_cursors (consumer, position, updated_at)
        SELECT 'data-platform',
               COALESCE((SELECT MIN(id) - 1 FROM outbox
                         WHERE status = 'PENDING' AND attempts = 0),
                        (SELECT MAX(id) FROM outbox), 0),
               CURRENT_TIMESTAMP""")
    # Events from before the e-mail consumer existed are settled for it untouched.
    op.execute("""
        INSERT INTO consumer_deliveries (consumer, outbox_id, event_id, status, attempts,
            outcome, created_at, handled_at)
        SELECT 'email', id, event_id, 'HANDLED', 0, 'before e-mail', created_at, created_at
        FROM outbox""")
    op.execute("""
        INSERT INTO consumer_cursors (consumer, position, updated_at)
        SELECT 'email', COALESCE((SELECT MAX(id) FROM outbox), 0), CURRENT_TIMESTAMP""")

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next')
        batch_op.drop_column('status')
        batch_op.drop_column('attempts')
        batch_op.drop_column('last_error')
        batch_op.drop_column('delivered_at')
        batch_op.create_index('ix_outbox_unstreamed', ['streamed_at', 'id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        from ecommerce.migrations.sql import applied

        op.execute(applied("0010", "shop_place_order"))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_unstreamed')
        batch_op.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                      server_default='PENDING'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', ecommerce.platform.types.UtcDateTime(),
                                      nullable=True))
        batch_op.create_index('ix_outbox_status_next', ['status', 'next_attempt_at'],
                              unique=False)
    op.execute("""
        UPDATE outbox SET status = 'DELIVERED', delivered_at = (
            SELECT handled_at FROM consumer_deliveries d
            WHERE d.consumer = 'data-platform' AND d.outbox_id = outbox.id)
        WHERE id IN (SELECT outbox_id FROM consumer_deliveries
                     WHERE consumer = 'data-platform' AND status = 'HANDLED')""")
    op.drop_table('consumer_cursors')
    with op.batch_alter_table('consumer_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_consumer_deliveries_due')
    op.drop_table('consumer_deliveries')
    if op.get_bind().dialect.name == "postgresql":  # the shop of 0009 writes with it
        from ecommerce.migrations.sql import applied

        op.execute(applied("0008", "shop_place_order"))
