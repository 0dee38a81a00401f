"""What an admin can do with the consumers and the outbox (the data platform's view of it);
each opens its own transaction."""

from __future__ import annotations

from ecommerce.consumers import repository
from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.consumers.errors import ConsumerNotFound, EventNotFound, EventNotRetryable
from ecommerce.consumers.schemas import (
    ConsumerOut,
    DeadEventOut,
    DeliveryOut,
    DeliveryStatusOut,
    EventOut,
)
from ecommerce.consumers.setup import NAMES
from ecommerce.events import outbox
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, require_admin


class ConsumerAdmin:
    """`configured`: the consumers this shop's settings run; `broker`: what feeds them
    (kafka, redis or outbox); `running`: they run (beside `serve`, or as `ecommerce
    consume`)."""

    def __init__(self, db: Database, clock: Clock, *, configured: set[str], broker: str,
                 running: bool, data_platform: bool):
        self.db = db
        self.clock = clock
        self.configured = configured
        self.broker = broker
        self.running = running
        self.data_platform = data_platform

    async def overview(self, caller: Principal) -> list[ConsumerOut]:
        require_admin(caller)
        views = []
        async with self.db.uow(write=False) as uow:
            for name in NAMES:
                lag, pending, dead = await repository.stats(uow.conn, name)
                views.append(ConsumerOut(name=name, lag=lag, pending=pending, dead=dead,
                                         configured=name in self.configured))
        return views

    async def dead(self, caller: Principal, name: str, page: Page
                   ) -> tuple[list[DeadEventOut], int]:
        require_admin(caller)
        _known(name)
        async with self.db.uow(write=False) as uow:
            rows, total = await repository.dead(uow.conn, name, page.size, page.offset)
        return [DeadEventOut.model_validate(row._mapping) for row in rows], total

    async def retry(self, caller: Principal, name: str, event_id: str) -> DeliveryOut:
        """A dead event is due again at once, with fresh attempts."""
        require_admin(caller)
        _known(name)
        async with self.db.uow() as uow:
            event = await repository.event_by_id(uow.conn, event_id)
            if event is None:
                raise EventNotFound()
            if not await repository.retry_dead(uow.conn, name, event.id, self.clock.now()):
                raise EventNotRetryable("Only a dead event can be retried")
            row = await repository.delivery(uow.conn, name, event.id)
            uow.after_commit(_wake)
        return DeliveryOut.model_validate(row._mapping)

    async def events(self, caller: Principal, status: str | None, page: Page
                     ) -> tuple[list[EventOut], int]:
        """The events the data platform takes, newest first, with its delivery of each."""
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            rows, total = await repository.events_for(uow.conn, DataPlatform.name,
                                                      DataPlatform.event_types, status,
                                                      page.size, page.offset)
        return [EventOut.model_validate(row._mapping) for row in rows], total

    def delivery_status(self, caller: Principal) -> DeliveryStatusOut:
        require_admin(caller)
        return DeliveryStatusOut(data_platform=self.data_platform,
                                 stream=self.broker != "outbox", broker=self.broker,
                                 relay=self.running)

    async def retry_event(self, caller: Principal, event_pk: int) -> EventOut:
        """A FAILED (dead) event back in the data platform's queue with fresh attempts."""
        require_admin(caller)
        async with self.db.uow() as uow:
            if await repository.event_for(uow.conn, DataPlatform.name,
                                          DataPlatform.event_types, event_pk) is None:
                raise EventNotFound()
            if not await repository.retry_dead(uow.conn, DataPlatform.name, event_pk,
                                               self.clock.now()):
                raise EventNotRetryable()
            uow.after_commit(_wake)
            row = await repository.event_for(uow.conn, DataPlatform.name,
                                             DataPlatform.event_types, event_pk)
        return EventOut.model_validate(row._mapping)


def _known(name: str) -> None:
    if name not in NAMES:
        raise ConsumerNotFound()


async def _wake() -> None:
    outbox.notify()
