"""The stream publisher: copies each outbox event to the Redis stream the consumers' groups
read (consumers/broker.py).

Several publishers (one per process that runs consumers) share the work: each takes a
batch of unpublished rows under a lease (`FOR UPDATE SKIP LOCKED` where the database has
it), appends them outside any transaction, then marks them published if it still holds the
lease. One that dies mid-batch leaves its lease to expire and another appends the batch
again; a message heard twice is still handled once (the consumers' rows), and one Redis
lost is found by the consumers' outbox sweep."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from ecommerce.events import outbox as outbox_events
from ecommerce.events.models import outbox
from ecommerce.platform.cache import REDIS_DOWN
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.publisher")

STREAM_MAXLEN = 1_000_000
RETRY_SECONDS = 1.0


class Publisher:
    def __init__(self, db: Database, settings: Settings, redis: Redis,
                 clock: Clock | None = None):
        self.db = db
        self.settings = settings
        self.redis = redis
        self.clock = clock or Clock()
        self.lease_seconds = settings.relay_lease_seconds

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; wake on new events or every second."""
        wakeup = outbox_events.subscribe()
        while not stop.is_set():
            try:
                published = await self.run_once()
            except Exception:  # noqa: BLE001 - a publisher never dies of one bad batch
                log.exception("publishing failed")
                published = 0
            if published == 0:
                wakeup.clear()
                # Both waits end here: an idle second must not leave a task behind.
                waits = [asyncio.ensure_future(wakeup.wait()),
                         asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()

    async def run_once(self, batch: int = 100) -> int:
        """Take one batch under a lease and append it to the stream; the rows taken."""
        lease, rows = await self._claim(batch)
        if not rows:
            return 0
        published = True
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(self.settings.stream_key, {
                        "outboxId": str(row.id), "eventId": row.event_id,
                        "eventType": row.event_type}, maxlen=STREAM_MAXLEN, approximate=True)
                await pipe.execute()
        except REDIS_DOWN as failure:
            published = False
            log.warning("stream unreachable", extra={"error": type(failure).__name__})
        await self._record(lease, [row.id for row in rows], published)
        return len(rows)

    def _due(self, now: datetime) -> Any:
        free = or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now)
        return and_(outbox.c.streamed_at.is_(None), outbox.c.next_attempt_at <= now, free)

    async def _claim(self, batch: int) -> tuple[str, list[Any]]:
        lease = uuid.uuid4().hex
        now = self.clock.now()
        async with self.db.uow() as uow:
            query = select(outbox.c.id).where(self._due(now)).order_by(outbox.c.id).limit(batch)
            if uow.dialect != "sqlite":  # SQLite's BEGIN IMMEDIATE already excludes others
                query = query.with_for_update(skip_locked=True)
            ids = list((await uow.conn.execute(query)).scalars())
            if not ids:
                return lease, []
            await uow.conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(
                lease=lease, locked_until=now + timedelta(seconds=self.lease_seconds)))
            rows = (await uow.conn.execute(
                select(outbox.c.id, outbox.c.event_id, outbox.c.event_type)
                .where(outbox.c.id.in_(ids)).order_by(outbox.c.id))).all()
        return lease, list(rows)

    async def _record(self, lease: str, ids: list[int], published: bool) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"locked_until": None, "lease": None}
        if published:
            values["streamed_at"] = now
        else:
            values["next_attempt_at"] = now + timedelta(seconds=RETRY_SECONDS)
        async with self.db.uow() as uow:
            await uow.conn.execute(update(outbox).where(outbox.c.id.in_(ids),
                                                        outbox.c.lease == lease)
                                   .values(**values))
