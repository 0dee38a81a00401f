from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.context import Ctx
from ecommerce.events import usecases
from ecommerce.events.errors import EventNotFound, EventNotRetryable
from ecommerce.events.schemas import DeliveryStatusOut, EventOut, EventStatus
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import IdPath

admin = APIRouter(prefix="/api/admin/events", tags=["admin: events"])


@admin.get("", response_model=list[EventOut], responses=responses(Unauthorized, Forbidden))
async def list_events(caller: CurrentUser, ctx: Ctx, page: PageParams, response: Response,
                      status: Annotated[EventStatus | None, Query()] = None) -> list[EventOut]:
    views, total = await usecases.events(ctx, caller, status, page)
    set_total(response, total)
    return views


@admin.get("/status", response_model=DeliveryStatusOut,
           responses=responses(Unauthorized, Forbidden))
async def delivery_status(caller: CurrentUser, ctx: Ctx) -> DeliveryStatusOut:
    return usecases.delivery_status(ctx, caller)


@admin.post("/{id}/retry", response_model=EventOut,
            responses=responses(Unauthorized, Forbidden, EventNotFound, EventNotRetryable))
async def retry_event(event_pk: IdPath, caller: CurrentUser, ctx: Ctx) -> EventOut:
    return await usecases.retry(ctx, caller, event_pk)
