"""What an admin can do with the outbox; each opens its own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecommerce.events import service
from ecommerce.events.schemas import DeliveryStatusOut, EventOut
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, require_admin

if TYPE_CHECKING:
    from ecommerce.context import AppContext


async def events(ctx: AppContext, caller: Principal, status: str | None, page: Page
                 ) -> tuple[list[EventOut], int]:
    require_admin(caller)
    async with ctx.db.uow(write=False) as uow:
        rows, total = await service.list_events(uow, status, page.size, page.offset)
    return [EventOut.model_validate(row._mapping) for row in rows], total


def delivery_status(ctx: AppContext, caller: Principal) -> DeliveryStatusOut:
    require_admin(caller)
    settings = ctx.settings
    return DeliveryStatusOut(data_platform=bool(settings.data_platform_url),
                             stream=ctx.redis is not None, relay=settings.run_consumers)


async def retry(ctx: AppContext, caller: Principal, event_pk: int) -> EventOut:
    require_admin(caller)
    async with ctx.db.uow() as uow:
        row = await service.retry(uow, event_pk, ctx.clock.now())
    return EventOut.model_validate(row._mapping)
