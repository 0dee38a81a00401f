"""Where a consumer hears of new events: the Redis stream (one consumer group per consumer)
or, without Redis, the outbox itself. Either only says which outbox events to look at; the
runner takes each under a lease in the database (consumers/repository.py), so a message
heard twice, by two workers, or after Redis lost it, is still handled once."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import ResponseError

from ecommerce.consumers import repository
from ecommerce.events import outbox as outbox_events
from ecommerce.platform.database import Database

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Broker(Protocol):
    lost: bool  # it may have dropped messages (Redis flushed): sweep the outbox now

    async def read(self, count: int, block_ms: int) -> tuple[list[int], list[str]]:
        """New events' outbox ids, and what to acknowledge once they are settled."""

    async def reclaim(self, count: int) -> tuple[list[int], list[str]]:
        """Events a dead worker was given and never acknowledged."""

    async def ack(self, refs: list[str]) -> None: ...


class OutboxBroker:
    """Without Redis: the events after the highest outbox id this worker has seen,
    starting from the consumer's cursor. An event that commits after a younger one was
    read is found by the runner's sweep."""

    lost = False

    def __init__(self, db: Database, consumer: str):
        self.db = db
        self.consumer = consumer
        self.high: int | None = None
        self.wakeup = outbox_events.subscribe()

    async def read(self, count: int, block_ms: int) -> tuple[list[int], list[str]]:
        ids = await self._newer(count)
        if not ids and block_ms > 0:
            # Woken by this process's commits at once; other processes' every 0.25 s.
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(block_ms / 1000, 0.25)):
                    await self.wakeup.wait()
            ids = await self._newer(count)
        return ids, []

    async def _newer(self, count: int) -> list[int]:
        async with self.db.uow(write=False) as uow:
            if self.high is None:
                self.high = await repository.cursor(uow.conn, self.consumer)
            ids = await repository.ids_after(uow.conn, self.high, count)
        if ids:
            self.high = ids[-1]
        return ids

    async def reclaim(self, count: int) -> tuple[list[int], list[str]]:
        return [], []

    async def ack(self, refs: list[str]) -> None:
        return None


class StreamBroker:
    """Redis Streams: the consumer's group on the events stream (XREADGROUP), messages a
    dead worker held claimed after the lease (XAUTOCLAIM), acknowledged once settled
    (XACK). A missing group (Redis flushed or restarted empty) is created again and
    reported as `lost`, so the runner rebuilds from the outbox."""

    def __init__(self, redis: Redis, stream: str, consumer: str, worker: str,
                 idle_ms: int):
        self.redis = redis
        self.stream = stream
        self.group = consumer
        self.worker = worker
        self.idle_ms = idle_ms
        self.lost = False
        self._grouped = False

    async def _ensure_group(self) -> None:
        # A new (or flushed) stream: from its start, so a message the publisher appended
        # meanwhile is not missed; else from its end (what came before is the sweep's).
        start = "$" if await self.redis.exists(self.stream) else "0"
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._grouped = True

    async def read(self, count: int, block_ms: int) -> tuple[list[int], list[str]]:
        if not self._grouped:
            await self._ensure_group()
        try:
            answer = await self.redis.xreadgroup(self.group, self.worker, {self.stream: ">"},
                                                 count=count, block=block_ms or None)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self.lost, self._grouped = True, False
            return [], []
        messages = [message for _, entries in answer or [] for message in entries]
        return _ids(messages)

    async def reclaim(self, count: int) -> tuple[list[int], list[str]]:
        if not self._grouped:
            return [], []
        try:
            answer = await self.redis.xautoclaim(self.stream, self.group, self.worker,
                                                 min_idle_time=self.idle_ms,
                                                 start_id="0-0", count=count)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self.lost, self._grouped = True, False
            return [], []
        return _ids(answer[1])

    async def ack(self, refs: list[str]) -> None:
        if refs:
            await self.redis.xack(self.stream, self.group, *refs)


def _ids(messages: list[tuple[str, dict[str, str]]]) -> tuple[list[int], list[str]]:
    ids, refs = [], []
    for ref, fields in messages:
        refs.append(ref)
        if fields and fields.get("outboxId", "").isdigit():
            ids.append(int(fields["outboxId"]))
    return ids, refs
