"""The consumers in `make bench`: their lag while orders are placed, each event's time from
the outbox to its consumer's effect, and how fast each consumer drains a backlog.

* During an order scenario a thread reads every consumer's lag (the admin's figure: events
  it has not finished) twice a second; afterwards, for the events written during the
  scenario, the time from the outbox row to the consumer's record (p50, p99, max).
* consumer_drain: each consumer in turn forgets what it did (its rows and cursor, one
  transaction) while the server runs; its workers find the backlog in their next outbox
  sweep and handle it again (the data platform's sink and dev-mail receive it all again).
  Events per second: the backlog over the time from its first to its last record."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from ecommerce.consumers import repository
from ecommerce.consumers.models import consumer_cursors, consumer_deliveries
from ecommerce.consumers.setup import NAMES
from ecommerce.events.models import outbox
from ecommerce.platform.database import Database

d = consumer_deliveries


class LagWatch:
    """Samples each consumer's lag every half second in a thread of its own."""

    def __init__(self, url: str):
        self.url = url
        self.peak = dict.fromkeys(NAMES, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch()), daemon=True)

    def __enter__(self) -> LagWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    async def _watch(self) -> None:
        db = Database(self.url, pool_size=1)
        try:
            while not self._stop.is_set():
                async with db.uow(write=False) as uow:
                    for name in NAMES:
                        lag, _, _ = await repository.stats(uow.conn, name)
                        self.peak[name] = max(self.peak[name], lag)
                await asyncio.sleep(0.5)
        finally:
            await db.dispose()


async def after_scenario(url: str, since: datetime, watch: LagWatch,
                         settle_s: float = 30) -> dict[str, Any]:
    """Per consumer: peak lag, the events written since `since`, and their time from the
    outbox to the record (waiting up to `settle_s` for the last ones)."""
    db = Database(url, pool_size=1)
    found: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + settle_s
        for name in NAMES:
            while True:
                async with db.uow(write=False) as uow:
                    lag, _, dead = await repository.stats(uow.conn, name)
                if lag == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            async with db.uow(write=False) as uow:
                rows = (await uow.conn.execute(
                    select(outbox.c.created_at, d.c.handled_at, d.c.outcome)
                    .select_from(outbox.join(d, d.c.outbox_id == outbox.c.id))
                    .where(d.c.consumer == name, d.c.status == "HANDLED",
                           outbox.c.created_at >= since))).all()
                events = (await uow.conn.execute(select(func.count()).select_from(outbox)
                                                 .where(outbox.c.created_at >= since))
                          ).scalar_one()
            waits = sorted((row.handled_at - row.created_at).total_seconds() * 1000
                           for row in rows)
            found[name] = {"events": events, "handled": len(rows), "lag_after": lag,
                           "dead": dead, "lag_peak": watch.peak[name],
                           "p50_ms": _at(waits, 0.5), "p99_ms": _at(waits, 0.99),
                           "max_ms": round(waits[-1], 1) if waits else None,
                           "sent": sum(row.outcome == "sent" for row in rows)}
    finally:
        await db.dispose()
    return found


def _at(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * share))], 1)


async def drain(url: str, timeout_s: float = 180) -> dict[str, Any]:
    """Each consumer forgets its work, then the running server's workers do it again."""
    db = Database(url, pool_size=1)
    found: dict[str, Any] = {}
    try:
        for name in NAMES:
            async with db.uow() as uow:
                await uow.conn.execute(delete(d).where(d.c.consumer == name))
                await uow.conn.execute(update(consumer_cursors).where(
                    consumer_cursors.c.consumer == name).values(position=0))
                backlog = (await uow.conn.execute(select(func.count()).select_from(outbox))
                           ).scalar_one()
            started = time.monotonic()
            while time.monotonic() - started < timeout_s:
                async with db.uow(write=False) as uow:
                    lag, _, _ = await repository.stats(uow.conn, name)
                if lag == 0:
                    break
                await asyncio.sleep(0.2)
            async with db.uow(write=False) as uow:
                first, last, done = (await uow.conn.execute(select(
                    func.min(d.c.handled_at), func.max(d.c.handled_at), func.count())
                    .where(d.c.consumer == name, d.c.status == "HANDLED"))).one()
            seconds = (last - first).total_seconds() if first and last else None
            found[name] = {"backlog": backlog, "handled": done, "lag_after": lag,
                           "seconds": round(seconds, 2) if seconds else None,
                           "events_per_s": round(done / seconds) if seconds else None,
                           "wall_s": round(time.monotonic() - started, 1)}
    finally:
        await db.dispose()
    return found
