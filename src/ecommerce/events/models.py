from sqlalchemy import Column, Index, String, Table, Text

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# The transactional outbox: every order event, written in the transaction of its change.
# What each consumer did with it is in consumers/models.py; the columns below the payload
# are the publisher's (the Redis stream, events/publisher.py).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(40), nullable=False),
    Column("order_id", BigId, nullable=True),
    Column("payload", Text, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("lease", String(32), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("streamed_at", UtcDateTime, nullable=True),
    Index("ix_outbox_unstreamed", "streamed_at", "id"),
    Index("ix_outbox_order_id", "order_id"),
)
