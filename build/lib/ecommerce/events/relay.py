"""The outbox relay: delivers events to the data platform and the Redis stream.

Several relays (one per server process, plus `ecommerce relay`) share the work: each takes
a batch under a lease (`FOR UPDATE SKIP LOCKED` where the database has it), delivers
outside any transaction, then records the outcome only if it still holds the lease. A relay
that dies mid-batch leaves its lease to expire, and another delivers the batch again: at
least once. Receivers dedupe on `eventId`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import and_, or_, select, update

from ecommerce.events import outbox as outbox_events
from ecommerce.events.models import outbox
from ecommerce.platform.cache import REDIS_DOWN
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("ecommerce.relay")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Relay:
    def __init__(self, db: Database, settings: Settings, redis: Redis | None,
                 clock: Clock | None = None):
        self.db = db
        self.settings = settings
        self.redis = redis
        self.clock = clock or Clock()
        self.url = settings.data_platform_url
        self.secret = settings.data_platform_secret or ""
        self.lease_seconds = settings.relay_lease_seconds
        self._http: httpx.AsyncClient | None = None

    @property
    def has_work_to_do(self) -> bool:
        return bool(self.url or self.redis is not None)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; wake on new events or every second."""
        wakeup = outbox_events.subscribe()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        try:
            while not stop.is_set():
                try:
                    delivered = await self.run_once()
                except Exception:  # noqa: BLE001 - a relay never dies of one bad batch
                    log.exception("relay batch failed")
                    delivered = 0
                if delivered == 0:
                    wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await asyncio.wait({asyncio.ensure_future(wakeup.wait()),
                                                asyncio.ensure_future(stop.wait())},
                                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self._http.aclose()
            self._http = None

    async def run_once(self, batch: int = 100) -> int:
        """Take one batch under a lease and deliver it; the number of events handled."""
        if not self.has_work_to_do:
            return 0
        lease, rows = await self._claim(batch)
        if not rows:
            return 0
        client = self._http or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        try:
            outcomes = await self._deliver_in_order(client, rows)
        finally:
            if client is not self._http:
                await client.aclose()
        await self._record(lease, rows, outcomes)
        return len(rows)

    async def _deliver_in_order(self, client: httpx.AsyncClient, rows: list[Any]
                                ) -> list[tuple[bool, bool, str]]:
        """Different orders in parallel; one order's events one after another, oldest
        first, so a receiver sees `order.completed` before its `order.cancelled`."""
        by_order: dict[Any, list[int]] = {}
        for index, row in enumerate(rows):
            by_order.setdefault(row.order_id, []).append(index)
        outcomes: list[tuple[bool, bool, str]] = [(False, False, "")] * len(rows)

        async def one_order(indexes: list[int]) -> None:
            for index in indexes:
                outcomes[index] = await self._deliver(client, rows[index])

        await asyncio.gather(*[one_order(indexes) for indexes in by_order.values()])
        return outcomes

    def _due(self, now: datetime) -> Any:
        free = or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now)
        work = []
        if self.url:
            work.append(outbox.c.status == "PENDING")
            # Failed for good, but still young enough: its slow retry (see `_record`).
            horizon = now - timedelta(hours=self.settings.relay_slow_retry_hours)
            work.append(and_(outbox.c.status == "FAILED", outbox.c.created_at > horizon))
        if self.redis is not None:
            work.append(outbox.c.streamed_at.is_(None))
        return and_(or_(*work), outbox.c.next_attempt_at <= now, free)

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
            rows = (await uow.conn.execute(select(outbox).where(outbox.c.id.in_(ids))
                                           .order_by(outbox.c.id))).all()
        return lease, list(rows)

    async def _deliver(self, client: httpx.AsyncClient, row: Any) -> tuple[bool, bool, str]:
        """(delivered over HTTP, published to the stream, error)."""
        due = row.status in ("PENDING", "FAILED")
        delivered, streamed, error = not due, row.streamed_at is not None, ""
        if self.url and due:
            body = row.payload.encode()
            try:
                response = await client.post(self.url, content=body, headers={
                    "Content-Type": "application/json", "X-Event-Id": row.event_id,
                    "X-Event-Type": row.event_type,
                    "X-Signature": signature(self.secret, body)})
                delivered = 200 <= response.status_code < 300
                if not delivered:
                    error = f"HTTP {response.status_code}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"[:500]
        if self.redis is not None and row.streamed_at is None:
            try:
                await self.redis.xadd(self.settings.stream_key, {
                    "eventId": row.event_id, "eventType": row.event_type,
                    "payload": row.payload}, maxlen=1_000_000, approximate=True)
                streamed = True
            except REDIS_DOWN as failure:
                error = error or f"stream: {type(failure).__name__}"
        return delivered, streamed, error

    async def _record(self, lease: str, rows: list[Any], outcomes: list[tuple[bool, bool, str]]
                      ) -> None:
        now = self.clock.now()
        async with self.db.uow() as uow:
            for row, (delivered, streamed, error) in zip(rows, outcomes, strict=True):
                values: dict[str, Any] = {"locked_until": None, "lease": None}
                if streamed and row.streamed_at is None:
                    values["streamed_at"] = now
                due = row.status in ("PENDING", "FAILED")
                if delivered and due:
                    values.update(status="DELIVERED", delivered_at=now, last_error=None)
                elif self.url and row.status == "FAILED":  # a slow retry failed too
                    values.update(attempts=row.attempts + 1, last_error=error,
                                  next_attempt_at=now + self.slow_retry)
                elif self.url and due:
                    attempts = row.attempts + 1
                    values.update(attempts=attempts, last_error=error)
                    if attempts >= self.settings.relay_max_attempts:
                        # Not abandoned: tried again on its own, slowly (`_due`), so an
                        # outage longer than the quick retries needs no admin.
                        values["next_attempt_at"] = now + self.slow_retry
                        values["status"] = "FAILED"
                        log.error("event failed for good", extra={
                            "eventId": row.event_id, "attempts": attempts, "error": error})
                    else:
                        values["next_attempt_at"] = now + self.backoff(attempts)
                elif error:  # only the stream failed: try again shortly
                    values["next_attempt_at"] = now + self.backoff(1)
                await uow.conn.execute(update(outbox).where(outbox.c.id == row.id,
                                                            outbox.c.lease == lease)
                                       .values(**values))

    @property
    def slow_retry(self) -> timedelta:
        return timedelta(seconds=self.settings.relay_slow_retry_seconds)

    def backoff(self, attempts: int) -> timedelta:
        base = self.settings.relay_backoff_seconds
        return timedelta(seconds=min(base * 2 ** (attempts - 1), 300.0))
