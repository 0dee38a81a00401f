from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.consumers.errors import ConsumerNotFound, EventNotFound, EventNotRetryable
from ecommerce.consumers.schemas import (
    ConsumerOut,
    DeadEventOut,
    DeliveryOut,
    DeliveryStatusOut,
    EventOut,
    EventStatus,
)
from ecommerce.consumers.usecases import ConsumerAdmin
from ecommerce.platform.errors import Forbidden, Unauthorized, responses
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import IdPath
from ecommerce.platform.services import provided

admin = APIRouter(prefix="/api/admin/consumers", tags=["admin: consumers"])
events_admin = APIRouter(prefix="/api/admin/events", tags=["admin: events"])

ConsumerName = Annotated[str, Path(alias="name", min_length=1, max_length=40)]
EventIdPath = Annotated[str, Path(alias="eventId", min_length=1, max_length=36)]
ConsumersDep = Annotated[ConsumerAdmin, provided(ConsumerAdmin)]


@admin.get("", response_model=list[ConsumerOut], responses=responses(Unauthorized, Forbidden))
async def list_consumers(caller: CurrentUser, consumers: ConsumersDep) -> list[ConsumerOut]:
    return await consumers.overview(caller)


@admin.get("/{name}/dead", response_model=list[DeadEventOut],
           responses=responses(Unauthorized, Forbidden, ConsumerNotFound))
async def dead_events(name: ConsumerName, caller: CurrentUser, consumers: ConsumersDep,
                      page: PageParams, response: Response) -> list[DeadEventOut]:
    views, total = await consumers.dead(caller, name, page)
    set_total(response, total)
    return views


@admin.post("/{name}/dead/{eventId}/retry", response_model=DeliveryOut,
            responses=responses(Unauthorized, Forbidden, ConsumerNotFound, EventNotFound,
                                EventNotRetryable))
async def retry_dead(name: ConsumerName, event_id: EventIdPath, caller: CurrentUser,
                     consumers: ConsumersDep) -> DeliveryOut:
    return await consumers.retry(caller, name, event_id)


@events_admin.get("", response_model=list[EventOut],
                  responses=responses(Unauthorized, Forbidden))
async def list_events(caller: CurrentUser, consumers: ConsumersDep, page: PageParams,
                      response: Response,
                      status: Annotated[EventStatus | None, Query()] = None) -> list[EventOut]:
    views, total = await consumers.events(caller, status, page)
    set_total(response, total)
    return views


@events_admin.get("/status", response_model=DeliveryStatusOut,
                  responses=responses(Unauthorized, Forbidden))
async def delivery_status(caller: CurrentUser, consumers: ConsumersDep) -> DeliveryStatusOut:
    return consumers.delivery_status(caller)


@events_admin.post("/{id}/retry", response_model=EventOut,
                   responses=responses(Unauthorized, Forbidden, EventNotFound,
                                       EventNotRetryable))
async def retry_event(event_pk: IdPath, caller: CurrentUser, consumers: ConsumersDep) -> EventOut:
    return await consumers.retry_event(caller, event_pk)
