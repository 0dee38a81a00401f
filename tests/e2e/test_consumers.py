"""Consumers as their own processes (`ecommerce consume`) under faults: one SIGKILLed in
the middle of a batch, Redis flushed under them. Each database; with Redis on PostgreSQL
and MariaDB (the stream and its groups), without on SQLite (the outbox cursor)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import String, cast, literal, select, update

from ecommerce.accounts.models import users
from ecommerce.consumers.models import consumer_deliveries
from ecommerce.events.models import outbox
from ecommerce.platform.database import Database
from ecommerce.standins.mail import Mailbox, smtp_server
from tests.e2e.conftest import (
    audit_clean,
    bulk_users,
    free_port,
    live_server,
    own_redis,
    server_env,
)
from tests.e2e.test_order_storm import codes, fire, make_products, read
from tests.waiting import BOUND_SECONDS
from tests.waiting import until as wait_until

d = consumer_deliveries


class Held(Mailbox):
    """Holds the n-th MAIL command (before any of that mail's data) until released."""

    def __init__(self, hold_at: int):
        super().__init__()
        self.hold_at = hold_at
        self.mails_begun = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: ANN001, N802
        self.mails_begun += 1
        if self.mails_begun == self.hold_at:
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 30)
            return "421 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@contextlib.contextmanager
def smtp(mailbox: Mailbox) -> Iterator[int]:
    port = free_port()
    server = smtp_server(mailbox, "127.0.0.1", port)
    server.start()
    try:
        yield port
    finally:
        mailbox_release = getattr(mailbox, "release", None)
        if mailbox_release is not None:
            mailbox_release.set()
        server.stop()


async def customers_with_mail(database_url: str, count: int) -> list[int]:
    ids = await bulk_users(database_url, count, balance=100_000)
    address = literal("u") + cast(users.c.id, String) + literal("@example.com")
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            await uow.conn.execute(update(users).where(users.c.id.in_(ids))
                                   .values(email=address))
    finally:
        await db.dispose()
    return ids


async def orders_with_mail(database_url: str, count: int) -> None:
    """`count` customers with an e-mail address, each with one paid order."""
    ids = await customers_with_mail(database_url, count)
    [item] = await make_products(database_url, (1_000, 10_000))
    async with live_server(database_url, workers=2) as server:
        responses = await fire(server.url, [(uid, {"userId": uid, "items": [
            {"productId": item, "quantity": 1}]}) for uid in ids])
    assert codes(responses) == {(201, "OK"): count}


def consume(env: dict[str, str], group: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "ecommerce", "consume"]
    if group:
        command += ["--group", group]
    return subprocess.Popen(command, env=env)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and it must exit within a bound; killed either way, never left behind."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


async def handled(database_url: str, consumer: str) -> int:
    return len(await read(database_url, select(d.c.outbox_id).where(
        d.c.consumer == consumer, d.c.status == "HANDLED")))


async def until(check: Any, seconds: float = BOUND_SECONDS) -> None:
    await wait_until(check, what="the consumers' state", seconds=seconds, every=0.1)


@contextlib.contextmanager
def redis_for(db_kind: str) -> Iterator[str | None]:
    """A private Redis (so a test may flush it) on PostgreSQL and MariaDB; none on SQLite."""
    if db_kind == "sqlite":
        yield None
        return
    with own_redis() as (url, _process):
        yield url


async def test_a_consumer_killed_mid_batch_leaves_its_mails_to_another_once_each(
        clean_db, db_kind):
    await orders_with_mail(clean_db, 30)
    mailbox = Held(hold_at=10)
    with redis_for(db_kind) as redis_url, smtp(mailbox) as port:
        env = server_env(clean_db, redis_url, SMTP_URL=f"smtp://127.0.0.1:{port}",
                         CONSUMER_LEASE_SECONDS="2")
        first = consume(env, "email")
        second = None
        try:
            await asyncio.to_thread(mailbox.holding.wait, 60)
            assert mailbox.holding.is_set() and mailbox.received == 9
            first.send_signal(signal.SIGKILL)  # mid-batch: its tenth mail begun, not sent
            first.wait()
            mailbox.release.set()
            assert await handled(clean_db, "email") == 9  # each sent mail was recorded
            second = consume(env, "email")  # takes over what the dead one held
            await until(lambda: _all_handled(clean_db, "email", 30))
        finally:
            stop(first)
            if second is not None:
                stop(second)
    assert mailbox.received == 30  # no mail twice
    assert sorted(m.recipients[0] for m in mailbox.snapshot()) == sorted(
        {m.recipients[0] for m in mailbox.snapshot()}) and len(mailbox.snapshot()) == 30
    assert await handled(clean_db, "email") == 30  # no event skipped
    await audit_clean(clean_db)


async def _all_handled(database_url: str, consumer: str, count: int) -> bool:
    return await handled(database_url, consumer) == count


async def test_redis_flushed_while_consumers_run_nothing_is_lost(clean_db, db_kind):
    if db_kind == "sqlite":
        import pytest

        pytest.skip("the embedded default has no Redis to lose")
    ids = await customers_with_mail(clean_db, 60)
    [item] = await make_products(clean_db, (1_000, 10_000))
    mailbox = Mailbox()
    with own_redis() as (redis_url, _process), smtp(mailbox) as port:
        env = server_env(clean_db, redis_url, SMTP_URL=f"smtp://127.0.0.1:{port}",
                         CONSUMER_SWEEP_SECONDS="2")
        consumers = [consume(env), consume(env)]  # two processes, each both consumers' work
        try:
            async with live_server(clean_db, workers=2, redis_url=redis_url) as server:
                for wave in range(3):
                    batch = ids[wave * 20:(wave + 1) * 20]
                    responses = await fire(server.url, [(uid, {"userId": uid, "items": [
                        {"productId": item, "quantity": 1}]}) for uid in batch])
                    assert codes(responses) == {(201, "OK"): 20}
                    client = Redis.from_url(redis_url)
                    try:
                        await client.flushall()  # the stream, its groups, their pending lists
                    finally:
                        await client.aclose()
            await until(lambda: _all_handled(clean_db, "email", 60))
        finally:
            for process in consumers:
                stop(process)
    events = await read(clean_db, select(outbox.c.event_id))
    assert len(events) == 60
    assert await handled(clean_db, "email") == 60
    assert mailbox.received == 60 and len(mailbox.snapshot()) == 60
    await audit_clean(clean_db)
