"""The consumer framework: runs one consumer over the order events, in any number of
processes at once.

Each pass hears of events from the broker (Kafka, a Redis stream, or the outbox), takes them in
one transaction under a lease (a row per consumer and event: new, or whose lease ran out,
or whose retry is due), runs the consumer's effect outside any transaction, and settles
each row if the lease is still its own: HANDLED, RETRY with backoff, or DEAD after the
last quick attempt (a dead event young enough is still tried again slowly, on its own; an
admin may retry it at once). One order's events are handled oldest first: an event waits
while an older one of its order is unfinished. A sweep of the outbox after the consumer's
cursor finds what no broker said (an event that committed late, a broker that lost its
messages) and moves the cursor on.

At least once: a worker that dies leaves its lease to run out and another takes the event
again. The row is the record of the effect: a consumer whose effect is in this database
writes it in the settling transaction; one whose effect is outside (an HTTP delivery, an
e-mail) settles each event right after its effect (`settle_each`), so a death repeats at
most the one effect in flight, and its receiver dedupes on the event id."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy.exc import DBAPIError

from ecommerce.consumers import repository
from ecommerce.consumers.broker import Broker, broker_for
from ecommerce.consumers.repository import Event
from ecommerce.platform.clock import Clock, sleep_or_stop
from ecommerce.platform.database import Database, is_deadlock
from ecommerce.platform.metrics import CONSUMER_EVENTS, CONSUMER_LAG, CONSUMER_OUTCOMES
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.consumers")


class Failure(Exception):
    """The effect did not happen this time; the event is tried again later."""


class Permanent(Failure):
    """The effect can never happen as things stand (a mail server refused the address for
    good): the event is dead at once, without quick or slow retries, for an admin to retry
    once what it needs has been fixed."""


class Consumer(Protocol):
    name: ClassVar[str]
    event_types: ClassVar[frozenset[str]]  # others are settled as "ignored" untouched
    settle_each: ClassVar[bool]  # the effect is outside the database: settle right after it
    concurrency: ClassVar[int]  # orders handled at once

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def handle(self, event: Event) -> str:
        """Do the effect; what it was ("sent", "no e-mail address"...). Raise on failure."""


@dataclass(frozen=True)
class Outcome:
    kind: str  # handled, failed, deferred
    note: str = ""
    permanent: bool = False


DEFERRED_SECONDS = 0.5
# A running worker looks back (a dead worker's messages, retries due) at most this often;
# a single pass (`run_once()`, the tests') always does.
LOOK_BACK = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Runner:
    def __init__(self, consumer: Consumer, db: Database, settings: Settings,
                 redis: Redis | None = None, clock: Clock | None = None,
                 worker: str | None = None):
        self.consumer = consumer
        self.name = consumer.name
        self.db = db
        self.settings = settings
        self.redis = redis
        self.clock = clock or Clock()
        self.worker = worker or worker_name()
        self.batch = settings.consumer_batch
        self.broker: Broker = broker_for(settings, db, redis, self.name, self.worker)
        self._last_sweep = 0.0
        self._last_look = 0.0

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Handle events until `stop` is set."""
        await self.consumer.start()
        try:
            while not stop.is_set():
                try:
                    taken = await self.run_once(block_ms=1000)
                except Exception:  # noqa: BLE001 - a consumer never dies of one bad pass
                    log.exception("consumer pass failed", extra={"consumer": self.name})
                    await sleep_or_stop(stop, 1.0)
                    continue
                if 0 < taken < self.batch:  # more are coming one by one: let them gather
                    await sleep_or_stop(stop, self.settings.consumer_linger_seconds)
        finally:
            await self.close()

    async def close(self) -> None:
        """Let go of the broker and the consumer's connections."""
        await self.broker.close()
        await self.consumer.close()

    async def run_once(self, *, block_ms: int = 0, sweep: bool = False) -> int:
        """One pass: new events, reclaimed ones, due retries, and the sweep when it is due
        (or `sweep`); the number of events taken."""
        taken, looking_back = 0, True
        try:
            ids, refs = await self.broker.read(self.batch, block_ms)
            taken += await self._process(ids)
            await self.broker.ack(refs)
            looking_back = block_ms == 0 or time.monotonic() - self._last_look >= LOOK_BACK
            if looking_back:
                ids, refs = await self.broker.reclaim(self.batch)
                taken += await self._process(ids)
                await self.broker.ack(refs)
            broker_down = False
        except self.broker.down:
            broker_down = looking_back = True  # the outbox has everything: sweep it instead
        if looking_back:  # what a dead worker held, and retries due: once a second
            self._last_look = time.monotonic()
            async with self.db.uow(write=False) as uow:
                due = await repository.due(uow.conn, self.name, self.clock.now(),
                                           self.horizon(), self.batch)
            taken += await self._process(due)
        if (sweep or broker_down or self.broker.lost
                or time.monotonic() - self._last_sweep >= self.settings.consumer_sweep_seconds):
            taken += await self.sweep()
            if broker_down:
                await asyncio.sleep(0.5)
        return taken

    async def sweep(self) -> int:
        """Take the events after the cursor that have no row (no broker said them, or it
        lost them), then move the cursor on; refresh the lag gauge."""
        self.broker.lost = False
        self._last_sweep = time.monotonic()
        taken = 0
        now = self.clock.now()
        while True:
            async with self.db.uow(write=False) as uow:
                position = await repository.cursor(uow.conn, self.name)
                before = now - timedelta(seconds=self.settings.consumer_sweep_grace_seconds)
                events = await repository.untaken(uow.conn, self.name, position, before,
                                                  self.batch)
            taken += await self._process([event.outbox_id for event in events])
            if len(events) < self.batch:
                break
        settled = now - timedelta(seconds=self.settings.consumer_settle_seconds)
        async with self.db.uow() as uow:
            await repository.advance_cursor(uow.conn, self.name, settled, now)
        async with self.db.uow(write=False) as uow:
            lag, _pending, _dead = await repository.stats(uow.conn, self.name)
        CONSUMER_LAG.labels(self.name).set(lag)
        return taken

    async def _process(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        lease = uuid.uuid4().hex
        taken, waiting = await self._claim(sorted(set(ids)), lease)
        if not taken:
            return 0
        mine = {event.outbox_id for event in taken}
        outcomes: dict[int, Outcome] = {}
        groups: dict[Any, list[Event]] = {}
        for event in taken:
            key = event.order_id if event.order_id is not None else f"event-{event.outbox_id}"
            groups.setdefault(key, []).append(event)
        gate = asyncio.Semaphore(self.consumer.concurrency)

        async def one_order(events: list[Event]) -> None:
            blocked = False
            for event in events:
                older = [outbox_id for order_id, outbox_id in waiting
                         if order_id == event.order_id and outbox_id < event.outbox_id
                         and outbox_id not in mine]
                if blocked or older:
                    outcome = Outcome("deferred", f"waits for an older event of order "
                                                  f"{event.order_id}")
                    if self.consumer.settle_each:
                        await self._settle(lease, [(event, outcome)])
                else:
                    async with gate:  # an effect and its record, before the next effect
                        outcome = await self._handle(event)
                        if self.consumer.settle_each:
                            await self._settle(lease, [(event, outcome)])
                outcomes[event.outbox_id] = outcome
                blocked = blocked or outcome.kind != "handled"

        await asyncio.gather(*[one_order(events) for events in groups.values()])
        if not self.consumer.settle_each:
            await self._settle(lease, [(event, outcomes[event.outbox_id]) for event in taken])
        return len(taken)

    async def _claim(self, ids: list[int], lease: str
                     ) -> tuple[list[Event], set[tuple[int, int]]]:
        """Take these events in one transaction (again on a deadlock: two workers taking
        overlapping batches on MySQL), with the older unfinished events of their orders."""
        for attempt in range(3):
            try:
                async with self.db.uow() as uow:
                    events = await repository.outbox_rows(uow.conn, ids)
                    taken = await repository.claim(uow.conn, self.name, events, lease,
                                                   self.clock.now(),
                                                   self.settings.consumer_lease_seconds,
                                                   self.horizon())
                    waiting = await repository.earlier_unfinished(uow.conn, self.name, taken)
                return taken, waiting
            except DBAPIError as error:
                if not is_deadlock(error) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _handle(self, event: Event) -> Outcome:
        if event.event_type not in self.consumer.event_types:
            return Outcome("handled", "ignored")
        try:
            return Outcome("handled", await self.consumer.handle(event))
        except Permanent as failure:
            return Outcome("failed", str(failure)[:500], permanent=True)
        except Failure as failure:
            return Outcome("failed", str(failure)[:500])
        except Exception as error:  # noqa: BLE001 - a poison event fails, goes dead, waits
            log.exception("consumer failed on an event",
                          extra={"consumer": self.name, "eventId": event.event_id})
            return Outcome("failed", f"{type(error).__name__}: {error}"[:500])

    async def _settle(self, lease: str, results: list[tuple[Event, Outcome]]) -> None:
        now = self.clock.now()
        handled = [(event.outbox_id, outcome.note[:80]) for event, outcome in results
                   if outcome.kind == "handled"]
        # One event (an e-mail, settled after each) is one statement: no BEGIN and COMMIT
        # on PostgreSQL.
        async with self.db.uow(one_statement=len(results) == 1) as uow:
            await repository.settle_handled(uow.conn, self.name, lease, handled, now)
            for event, outcome in results:
                if outcome.kind == "handled":
                    CONSUMER_EVENTS.labels(self.name, "handled").inc()
                    CONSUMER_OUTCOMES.labels(self.name, outcome.note).inc()
                    continue
                values = self._values(event, outcome, now)
                if await repository.settle(uow.conn, self.name, lease, event.outbox_id,
                                           values):
                    CONSUMER_EVENTS.labels(self.name, values["status"].lower()).inc()

    def _values(self, event: Event, outcome: Outcome, now: Any) -> dict[str, Any]:
        """A failed or deferred event's row."""
        if outcome.kind == "deferred":
            return {"status": "RETRY", "last_error": outcome.note,
                    "next_attempt_at": now + timedelta(seconds=DEFERRED_SECONDS)}
        attempts = event.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": outcome.note}
        if outcome.permanent:
            log.warning("event is dead: it cannot be handled as things stand",
                        extra={"consumer": self.name, "eventId": event.event_id,
                               "error": outcome.note})
            return {**values, "status": "DEAD", "next_attempt_at": None}
        if attempts < self.settings.consumer_max_attempts:
            return {**values, "status": "RETRY", "next_attempt_at": now + self.backoff(attempts)}
        young = event.created_at > self.horizon()
        if event.attempts < self.settings.consumer_max_attempts:
            log.error("event is dead", extra={"consumer": self.name, "eventId": event.event_id,
                                              "attempts": attempts, "error": outcome.note})
        # Dead, but not abandoned while young: tried again on its own, slowly, so an
        # outage longer than the quick retries needs no admin.
        slow = timedelta(seconds=self.settings.consumer_slow_retry_seconds)
        return {**values, "status": "DEAD", "next_attempt_at": now + slow if young else None}

    def horizon(self) -> datetime:
        """A dead event older than this is left for an admin."""
        return self.clock.now() - timedelta(hours=self.settings.consumer_slow_retry_hours)

    def backoff(self, attempts: int) -> timedelta:
        base = self.settings.consumer_backoff_seconds
        return timedelta(seconds=min(base * 2 ** (attempts - 1), 300.0))
