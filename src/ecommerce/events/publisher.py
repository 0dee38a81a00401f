"""The publisher: sends each outbox event to the broker the consumers read (consumers/
broker.py): a Redis stream, or a Kafka topic keyed by the event's order (one order's events
stay in one partition, in order).

Several publishers (one per process that runs consumers) share the work: each takes a
batch of unpublished rows under a lease (`FOR UPDATE SKIP LOCKED` where the database has
it), sends them outside any transaction, then marks them published, if it still holds the
lease, only once the broker acknowledged every one (Kafka: acks=all). One that dies
mid-batch leaves its lease to expire and another sends the batch again; a message heard
twice is still handled once (the consumers' rows), and a broker that lost messages (Redis
flushed, Kafka restarted empty) is made up for by the consumers' outbox sweep."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, or_, select, update

from ecommerce.events import outbox as outbox_events
from ecommerce.events.models import outbox
from ecommerce.platform.cache import REDIS_DOWN
from ecommerce.platform.clock import Clock, sleep_or_stop
from ecommerce.platform.database import Database
from ecommerce.platform.kafka import KAFKA_DOWN, ensure_topic, options
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.publisher")

STREAM_MAXLEN = 1_000_000
RETRY_SECONDS = 1.0
BATCH = 100  # outbox rows sent at once


class Sink(Protocol):
    """A broker the publisher sends to. `send` returns once the broker has every row, or
    raises one of `down`."""

    name: str
    down: tuple[type[BaseException], ...]

    async def send(self, rows: list[Any]) -> None: ...

    async def close(self) -> None: ...


def message(row: Any) -> dict[str, str]:
    """What the broker carries: the outbox row's id (the consumers read the event from the
    outbox), its event id and type."""
    return {"outboxId": str(row.id), "eventId": row.event_id, "eventType": row.event_type}


class StreamSink:
    """A Redis stream (XADD, capped near STREAM_MAXLEN entries)."""

    name = "redis"
    down = REDIS_DOWN

    def __init__(self, redis: Redis, key: str):
        self.redis = redis
        self.key = key

    async def send(self, rows: list[Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xadd(self.key, message(row),  # type: ignore[arg-type]
                          maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()

    async def close(self) -> None:
        return None


def kafka_message(row: Any) -> bytes:
    """A Kafka message's value: the ids the consumers read, and the event itself (the data
    platform's body, SPEC) for anyone else reading the topic."""
    return json.dumps({**message(row), "orderId": row.order_id,
                       "event": json.loads(row.payload)}, ensure_ascii=False).encode()


class KafkaSink:
    """A Kafka topic (made if missing): each event keyed by its order id, acks=all. The
    idempotent producer is not used (not every Kafka-protocol broker has it); a batch sent
    again after a lost acknowledgement is deduplicated by the consumers' rows. A producer
    that failed is dropped, so the next batch starts from a fresh connection and topic
    check (a broker restarted empty)."""

    name = "kafka"
    down = KAFKA_DOWN

    def __init__(self, settings: Settings):
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None

    async def _producer(self) -> AIOKafkaProducer:
        from aiokafka import AIOKafkaProducer

        if self.producer is None:
            await ensure_topic(self.settings)
            producer = AIOKafkaProducer(**options(self.settings, "publisher"), acks="all",
                                        enable_idempotence=False, linger_ms=2)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self.producer = producer
        return self.producer

    async def send(self, rows: list[Any]) -> None:
        try:
            # Connecting, and every acknowledgement, within the bound.
            async with asyncio.timeout(self.settings.kafka_timeout_seconds * 2):
                producer = await self._producer()
                sent = [await producer.send(
                            self.settings.topic, kafka_message(row),
                            key=str(row.order_id if row.order_id is not None
                                    else row.event_id).encode())
                        for row in rows]
                await asyncio.gather(*sent)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                async with asyncio.timeout(self.settings.kafka_timeout_seconds):
                    await producer.stop()
            except (*KAFKA_DOWN, TimeoutError):
                log.warning("the Kafka producer did not stop cleanly")


class Publisher:
    def __init__(self, db: Database, settings: Settings, sink: Sink,
                 clock: Clock | None = None):
        self.db = db
        self.settings = settings
        self.sink = sink
        self.clock = clock or Clock()
        self.lease_seconds = settings.relay_lease_seconds

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; wake on new events or every second."""
        try:
            await self._publish_until(stop)
        finally:
            await self.sink.close()

    async def _publish_until(self, stop: asyncio.Event) -> None:
        wakeup = outbox_events.subscribe()
        while not stop.is_set():
            try:
                published = await self.run_once()
            except Exception:  # noqa: BLE001 - a publisher never dies of one bad batch
                log.exception("publishing failed")
                published = 0
            if 0 < published < BATCH:  # orders arrive one by one: let a batch gather
                await sleep_or_stop(stop, self.settings.consumer_linger_seconds)
            elif published == 0:
                wakeup.clear()
                # Both waits end here: an idle second must not leave a task behind.
                waits = [asyncio.ensure_future(wakeup.wait()),
                         asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for wait in waits:
                    wait.cancel()

    async def run_once(self, batch: int = BATCH) -> int:
        """Take one batch under a lease and send it to the broker; the rows taken."""
        lease, rows = await self._claim(batch)
        if not rows:
            return 0
        published = True
        try:
            await self.sink.send(rows)
        except self.sink.down as failure:
            published = False
            log.warning("broker unreachable: the events wait in the outbox",
                        extra={"broker": self.sink.name, "error": type(failure).__name__})
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
                select(outbox.c.id, outbox.c.event_id, outbox.c.event_type,
                       outbox.c.order_id, outbox.c.payload)
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
