"""The transactional outbox: events are rows written in the transaction of the change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.events.domain import OrderEvent
from ecommerce.events.models import outbox

_wakeups: list[asyncio.Event] = []


def subscribe() -> asyncio.Event:
    """An event set whenever this process commits new outbox rows (wakes the consumers
    and the stream publisher)."""
    event = asyncio.Event()
    _wakeups.append(event)
    return event


def notify() -> None:
    for event in _wakeups:
        event.set()


def row(event: OrderEvent) -> dict[str, Any]:
    """The outbox row of an event: due for publishing now, with a new event id."""
    event_id = str(uuid.uuid4())
    return {"event_id": event_id, "event_type": event.event_type, "order_id": event.order_id,
            "payload": orjson.dumps(event.body(event_id)).decode(),
            "next_attempt_at": event.occurred_at,
            "created_at": event.occurred_at}


async def write(conn: AsyncConnection, events: Sequence[OrderEvent]) -> None:
    """Store events in the current transaction."""
    if len(events) == 1:  # the usual case: one row, no executemany
        await conn.execute(_INSERT, row(events[0]))
    elif events:
        await conn.execute(_INSERT, [row(event) for event in events])


_INSERT = insert(outbox)


class Outbox:
    """The outbox as a unit of work's event store (platform.database.EventStore)."""

    async def write(self, conn: AsyncConnection, events: list[Any]) -> None:
        await write(conn, events)

    def notify(self) -> None:
        notify()
