"""The admin's view of the outbox: each event with its delivery to the data platform (the
`data-platform` consumer's row)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecommerce.consumers import repository
from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.events import outbox
from ecommerce.events.errors import EventNotFound, EventNotRetryable
from ecommerce.platform.database import UnitOfWork

CONSUMER = DataPlatform.name


async def list_events(uow: UnitOfWork, status: str | None, limit: int, offset: int
                      ) -> tuple[Sequence[Any], int]:
    """Events newest first, with the total."""
    return await repository.events_for(uow.conn, CONSUMER, status, limit, offset)


async def retry(uow: UnitOfWork, event_pk: int, now: datetime) -> Any:
    """Put a FAILED (dead) event back in the data platform's queue with fresh attempts."""
    if await repository.event_for(uow.conn, CONSUMER, event_pk) is None:
        raise EventNotFound()
    if not await repository.retry_dead(uow.conn, CONSUMER, event_pk, now):
        raise EventNotRetryable()
    uow.after_commit(_wake)
    return await repository.event_for(uow.conn, CONSUMER, event_pk)


async def _wake() -> None:
    outbox.notify()
