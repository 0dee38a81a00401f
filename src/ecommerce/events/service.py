"""Admin view of the outbox, and the audit of invariant 6."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecommerce.events import outbox
from ecommerce.events.errors import EventNotFound, EventNotRetryable
from ecommerce.platform.database import UnitOfWork


async def list_events(uow: UnitOfWork, status: str | None, limit: int, offset: int
                      ) -> tuple[Sequence[Any], int]:
    """Events newest first, with the total."""
    return await outbox.list_events(uow.conn, status, limit, offset)


async def retry(uow: UnitOfWork, event_pk: int, now: datetime) -> Any:
    """Put a FAILED event back in the queue with fresh attempts."""
    if await outbox.get(uow.conn, event_pk) is None:
        raise EventNotFound()
    if not await outbox.retry(uow.conn, event_pk, now):
        raise EventNotRetryable()
    uow.after_commit(_wake)
    return await outbox.get(uow.conn, event_pk)


async def _wake() -> None:
    outbox.notify()
