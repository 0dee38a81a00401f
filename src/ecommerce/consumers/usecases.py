"""What an admin can do with the consumers and the outbox (the data platform's view of it);
each opens its own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecommerce.consumers import repository, setup
from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.consumers.errors import ConsumerNotFound, EventNotFound, EventNotRetryable
from ecommerce.consumers.schemas import (
    ConsumerOut,
    DeadEventOut,
    DeliveryOut,
    DeliveryStatusOut,
    EventOut,
)
from ecommerce.events import outbox
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, require_admin

if TYPE_CHECKING:
    from ecommerce.context import AppContext


async def overview(ctx: AppContext, caller: Principal) -> list[ConsumerOut]:
    require_admin(caller)
    configured = {consumer.name for consumer in setup.consumers(ctx)}
    views = []
    async with ctx.db.uow(write=False) as uow:
        for name in setup.NAMES:
            lag, pending, dead = await repository.stats(uow.conn, name)
            views.append(ConsumerOut(name=name, lag=lag, pending=pending, dead=dead,
                                     configured=name in configured))
    return views


def _known(name: str) -> None:
    if name not in setup.NAMES:
        raise ConsumerNotFound()


async def dead(ctx: AppContext, caller: Principal, name: str, page: Page
               ) -> tuple[list[DeadEventOut], int]:
    require_admin(caller)
    _known(name)
    async with ctx.db.uow(write=False) as uow:
        rows, total = await repository.dead(uow.conn, name, page.size, page.offset)
    return [DeadEventOut.model_validate(row._mapping) for row in rows], total


async def retry(ctx: AppContext, caller: Principal, name: str, event_id: str) -> DeliveryOut:
    """A dead event is due again at once, with fresh attempts."""
    require_admin(caller)
    _known(name)
    async with ctx.db.uow() as uow:
        event = await repository.event_by_id(uow.conn, event_id)
        if event is None:
            raise EventNotFound()
        if not await repository.retry_dead(uow.conn, name, event.id, ctx.clock.now()):
            raise EventNotRetryable("Only a dead event can be retried")
        row = await repository.delivery(uow.conn, name, event.id)
        uow.after_commit(_wake)
    return DeliveryOut.model_validate(row._mapping)


async def _wake() -> None:
    outbox.notify()


async def events(ctx: AppContext, caller: Principal, status: str | None, page: Page
                 ) -> tuple[list[EventOut], int]:
    """The events the data platform takes, newest first, with its delivery of each."""
    require_admin(caller)
    async with ctx.db.uow(write=False) as uow:
        rows, total = await repository.events_for(uow.conn, DataPlatform.name,
                                                  DataPlatform.event_types, status,
                                                  page.size, page.offset)
    return [EventOut.model_validate(row._mapping) for row in rows], total


def delivery_status(ctx: AppContext, caller: Principal) -> DeliveryStatusOut:
    require_admin(caller)
    settings = ctx.settings
    return DeliveryStatusOut(data_platform=bool(settings.data_platform_url),
                             stream=ctx.redis is not None, relay=settings.run_consumers)


async def retry_event(ctx: AppContext, caller: Principal, event_pk: int) -> EventOut:
    """A FAILED (dead) event back in the data platform's queue with fresh attempts."""
    require_admin(caller)
    async with ctx.db.uow() as uow:
        if await repository.event_for(uow.conn, DataPlatform.name, DataPlatform.event_types,
                                      event_pk) is None:
            raise EventNotFound()
        if not await repository.retry_dead(uow.conn, DataPlatform.name, event_pk,
                                           ctx.clock.now()):
            raise EventNotRetryable()
        uow.after_commit(_wake)
        row = await repository.event_for(uow.conn, DataPlatform.name,
                                         DataPlatform.event_types, event_pk)
    return EventOut.model_validate(row._mapping)
