from sqlalchemy import Column, Index, Integer, String, Table, Text

from ecommerce.platform.database import metadata
from ecommerce.platform.types import BigId, UtcDateTime

# What each consumer did with each outbox event: one row per (consumer, event), taken under
# a lease before the effect and settled after it (consumers/runner.py). The primary key is
# SPEC invariant 9: a consumer's effect is recorded at most once per event.
consumer_deliveries = Table(
    "consumer_deliveries",
    metadata,
    Column("consumer", String(40), primary_key=True),
    Column("outbox_id", BigId, primary_key=True),
    Column("event_id", String(36), nullable=False),
    # WORKING (leased), RETRY (failed, due again at next_attempt_at), HANDLED, DEAD
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),  # NULL: not again on its own
    Column("lease", String(32), nullable=True),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("outcome", String(80), nullable=True),  # what the effect was, e.g. "sent", "no e-mail"
    Column("created_at", UtcDateTime, nullable=False),
    Column("handled_at", UtcDateTime, nullable=True),
    Index("ix_consumer_deliveries_due", "consumer", "status", "next_attempt_at"),
)

# Each consumer's position in the outbox: every event at or below it has a delivery row.
consumer_cursors = Table(
    "consumer_cursors",
    metadata,
    Column("consumer", String(40), primary_key=True),
    Column("position", BigId, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
