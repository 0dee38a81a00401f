from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import AdminUser
from ecommerce.context import Ctx
from ecommerce.events import service
from ecommerce.events.errors import EventNotFound, EventNotRetryable
from ecommerce.events.schemas import DeliveryStatusOut, EventOut, EventStatus
from ecommerce.platform.deps import ReadUow, Uow
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import IdPath

admin = APIRouter(prefix="/api/admin/events", tags=["admin: events"])


@admin.get("", response_model=list[EventOut], responses=responses(Unauthorized, Forbidden))
async def list_events(_: AdminUser, uow: ReadUow, page: PageParams, response: Response,
                      status: Annotated[EventStatus | None, Query()] = None) -> list[EventOut]:
    async with uow:
        rows, total = await service.list_events(uow, status, page.size, page.offset)
    set_total(response, total)
    return [EventOut.model_validate(row._mapping) for row in rows]


@admin.get("/status", response_model=DeliveryStatusOut,
           responses=responses(Unauthorized, Forbidden))
async def delivery_status(_: AdminUser, ctx: Ctx) -> DeliveryStatusOut:
    settings = ctx.settings
    return DeliveryStatusOut(data_platform=bool(settings.data_platform_url),
                             stream=ctx.redis is not None, relay=settings.run_relay)


@admin.post("/{id}/retry", response_model=EventOut,
            responses=responses(Unauthorized, Forbidden, EventNotFound, EventNotRetryable))
async def retry_event(event_pk: IdPath,
                      _: AdminUser, ctx: Ctx, uow: Uow) -> EventOut:
    async with uow:
        row = await service.retry(uow, event_pk, ctx.clock.now())
    return EventOut.model_validate(row._mapping)
