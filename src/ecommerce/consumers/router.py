from typing import Annotated

from fastapi import APIRouter, Path, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.consumers import usecases
from ecommerce.consumers.errors import ConsumerNotFound
from ecommerce.consumers.schemas import ConsumerOut, DeadEventOut, DeliveryOut
from ecommerce.context import Ctx
from ecommerce.events.errors import EventNotFound, EventNotRetryable
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.pagination import PageParams, set_total

admin = APIRouter(prefix="/api/admin/consumers", tags=["admin: consumers"])

ConsumerName = Annotated[str, Path(alias="name", min_length=1, max_length=40)]
EventIdPath = Annotated[str, Path(alias="eventId", min_length=1, max_length=36)]


@admin.get("", response_model=list[ConsumerOut], responses=responses(Unauthorized, Forbidden))
async def list_consumers(caller: CurrentUser, ctx: Ctx) -> list[ConsumerOut]:
    return await usecases.overview(ctx, caller)


@admin.get("/{name}/dead", response_model=list[DeadEventOut],
           responses=responses(Unauthorized, Forbidden, ConsumerNotFound))
async def dead_events(name: ConsumerName, caller: CurrentUser, ctx: Ctx, page: PageParams,
                      response: Response) -> list[DeadEventOut]:
    views, total = await usecases.dead(ctx, caller, name, page)
    set_total(response, total)
    return views


@admin.post("/{name}/dead/{eventId}/retry", response_model=DeliveryOut,
            responses=responses(Unauthorized, Forbidden, ConsumerNotFound, EventNotFound,
                                EventNotRetryable))
async def retry_dead(name: ConsumerName, event_id: EventIdPath, caller: CurrentUser,
                     ctx: Ctx) -> DeliveryOut:
    return await usecases.retry(ctx, caller, name, event_id)
