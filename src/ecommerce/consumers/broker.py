"""Where a consumer hears of new events: a Kafka topic or a Redis stream (one consumer
group per consumer), or, without a broker, the outbox itself. Each only says which outbox
events to look at; the runner takes each under a lease in the database
(consumers/repository.py), so a message heard twice, by two workers, or after a broker
lost it, is still handled once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from redis.exceptions import ResponseError

from ecommerce.consumers import repository
from ecommerce.events import outbox as outbox_events
from ecommerce.platform.cache import REDIS_DOWN
from ecommerce.platform.database import Database
from ecommerce.platform.kafka import KAFKA_DOWN, ensure_topic, options
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.consumers")


def broker_for(settings: Settings, db: Database, redis: Redis | None, consumer: str,
               worker: str) -> Broker:
    """The broker the settings name (EVENT_BROKER)."""
    if settings.broker == "kafka":
        return KafkaBroker(settings, consumer, worker)
    if settings.broker == "redis":
        if redis is None:
            raise ValueError("EVENT_BROKER=redis needs REDIS_URL")
        return StreamBroker(redis, settings.stream_key, consumer, worker,
                            idle_ms=int(settings.consumer_lease_seconds * 1000))
    return OutboxBroker(db, consumer)


class Broker(Protocol):
    lost: bool  # it may have dropped messages (Redis flushed, Kafka rebalanced): sweep now
    down: tuple[type[BaseException], ...]  # what it raises while unreachable

    async def read(self, count: int, block_ms: int) -> tuple[list[int], list[str]]:
        """New events' outbox ids, and what to acknowledge once they are settled."""

    async def reclaim(self, count: int) -> tuple[list[int], list[str]]:
        """Events a dead worker was given and never acknowledged."""

    async def ack(self, refs: list[str]) -> None: ...

    async def close(self) -> None: ...


class OutboxBroker:
    """Without Redis: the events after the highest outbox id this worker has seen,
    starting from the consumer's cursor. An event that commits after a younger one was
    read is found by the runner's sweep."""

    lost = False
    down: tuple[type[BaseException], ...] = ()

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

    async def close(self) -> None:
        return None


class StreamBroker:
    """Redis Streams: the consumer's group on the events stream (XREADGROUP), messages a
    dead worker held claimed after the lease (XAUTOCLAIM), acknowledged once settled
    (XACK). A missing group (Redis flushed or restarted empty) is created again and
    reported as `lost`, so the runner rebuilds from the outbox."""

    down = REDIS_DOWN

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

    async def close(self) -> None:
        return None


class KafkaBroker:
    """Kafka: the consumer's group (named after the consumer) on the events topic. Offsets
    are committed only once the events read are settled (`ack`); a pass that failed before
    that reads them again (a seek back to the first one not committed). A dead worker's
    partitions go to the others at the rebalance, from its last commit. Every new
    assignment (a rebalance, a broker restarted empty) is reported as `lost`, so the runner
    sweeps the outbox at once. A new group starts at the topic's beginning (what it has
    already handled is skipped on its rows)."""

    lost = False
    down = KAFKA_DOWN

    def __init__(self, settings: Settings, consumer: str, worker: str):
        self.settings = settings
        self.group = consumer
        self.worker = worker
        self.consumer: AIOKafkaConsumer | None = None
        self.starting: asyncio.Future[AIOKafkaConsumer] | None = None
        self.unacked: dict[TopicPartition, int] = {}  # first offset read, not committed

    async def _start(self) -> AIOKafkaConsumer:
        await ensure_topic(self.settings)
        session_ms = int(self.settings.kafka_session_timeout_seconds * 1000)
        consumer = AIOKafkaConsumer(
            **options(self.settings, f"{self.group}-{self.worker}"),
            group_id=self.group, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=self.settings.consumer_batch,
            session_timeout_ms=session_ms, heartbeat_interval_ms=session_ms // 3)
        consumer.subscribe([self.settings.topic], listener=_Assignments(self))
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _consumer(self, block_ms: int) -> AIOKafkaConsumer | None:
        """The started consumer; None while it still joins its group (seconds: the
        coordinator waits for other members), so a pass goes on to the retries and the
        sweep meanwhile."""
        if self.consumer is not None:
            return self.consumer
        if self.starting is None:
            self.starting = asyncio.ensure_future(self._start())
        if not self.starting.done() and block_ms > 0:
            await asyncio.wait({self.starting}, timeout=block_ms / 1000)
        if not self.starting.done():
            return None
        starting, self.starting = self.starting, None
        self.consumer = starting.result()  # raises what the start raised (broker down)
        return self.consumer

    async def read(self, count: int, block_ms: int) -> tuple[list[int], list[str]]:
        try:
            consumer = await self._consumer(block_ms)
            if consumer is None:
                return [], []
            assigned = consumer.assignment()
            for partition, offset in self.unacked.items():  # a failed pass: read them again
                if partition in assigned:
                    consumer.seek(partition, offset)
            self.unacked.clear()
            batches = await consumer.getmany(timeout_ms=block_ms, max_records=count)
        except BaseException:
            await self.close()
            raise
        ids: list[int] = []
        refs: list[str] = []
        for partition, records in batches.items():
            self.unacked.setdefault(partition, records[0].offset)
            refs.append(f"{partition.partition}:{records[-1].offset}")
            for record in records:
                outbox_id = _outbox_id(record.value)
                if outbox_id is not None:
                    ids.append(outbox_id)
        return ids, refs

    async def reclaim(self, count: int) -> tuple[list[int], list[str]]:
        return [], []  # a dead member's partitions come back at the rebalance

    async def ack(self, refs: list[str]) -> None:
        if not refs or self.consumer is None:
            return
        offsets: dict[TopicPartition, int] = {}
        for ref in refs:
            partition, offset = (int(part) for part in ref.split(":"))
            key = TopicPartition(self.settings.topic, partition)
            offsets[key] = max(offsets.get(key, 0), offset + 1)
        self.unacked.clear()
        try:
            # aiokafka retries a commit as long as the error may pass (a topic the broker
            # lost when it restarted empty never comes back): bounded here.
            async with asyncio.timeout(self.settings.kafka_timeout_seconds):
                await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # Rebalanced meanwhile: the partition's new owner reads these again, and their
            # rows keep each effect once.
            log.info("offsets not committed: the group rebalanced",
                     extra={"consumer": self.group})
        except KAFKA_DOWN as failure:
            # The events are settled; only the broker's bookmark is not. Start again
            # (topic and group made anew if the broker lost them), sweeping at once.
            log.warning("offsets not committed: joining the group again",
                        extra={"consumer": self.group, "error": type(failure).__name__})
            await self.close()
            self.lost = True

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        starting, self.starting = self.starting, None
        self.unacked.clear()
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
        if consumer is not None:
            try:
                async with asyncio.timeout(self.settings.kafka_timeout_seconds):
                    await consumer.stop()
            except (*KAFKA_DOWN, TimeoutError):
                log.warning("the Kafka consumer did not stop cleanly",
                            extra={"consumer": self.group})


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Each new assignment: sweep the outbox at once, and say which partitions this worker
    has."""

    def __init__(self, broker: KafkaBroker):
        self.broker = broker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.broker.lost = True
        log.info("partitions assigned", extra={
            "consumer": self.broker.group, "worker": self.broker.worker,
            "partitions": sorted(partition.partition for partition in assigned)})


def _outbox_id(value: bytes | None) -> int | None:
    try:
        found = json.loads(value or b"").get("outboxId", "")
    except (ValueError, AttributeError):
        return None
    return int(found) if str(found).isdigit() else None


def _ids(messages: list[tuple[str, dict[str, str]]]) -> tuple[list[int], list[str]]:
    ids, refs = [], []
    for ref, fields in messages:
        refs.append(ref)
        if fields and fields.get("outboxId", "").isdigit():
            ids.append(int(fields["outboxId"]))
    return ids, refs
