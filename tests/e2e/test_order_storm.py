"""Orders under real parallelism and faults, over two server processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from ecommerce.catalog.models import products
from ecommerce.consumers.models import consumer_deliveries
from ecommerce.events.models import outbox
from ecommerce.platform.database import Database
from ecommerce.wallet.models import wallets
from tests.e2e.conftest import (
    ShopContext,
    audit_clean,
    bulk_users,
    free_port,
    live_server,
    many_connections,
    server_env,
    token_for,
)
from tests.factories import make_product
from tests.waiting import until


async def make_products(database_url: str, *specs: tuple[int, int]) -> list[int]:
    shop = ShopContext(database_url)
    try:
        return [await make_product(shop, price=price, stock=stock) for price, stock in specs]
    finally:
        await shop.ctx.close()


async def read(database_url: str, query):  # noqa: ANN001
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow(write=False) as uow:
            return (await uow.conn.execute(query)).all()
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def db_session(database_url: str):  # noqa: ANN201
    """A unit of work on a database a server process serves (what a test changes in it)."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            yield uow
    finally:
        await db.dispose()


async def fire(url: str, bodies: list[tuple[int, dict]], concurrency: int = 200):
    async with many_connections(concurrency) as client:
        slots, start = asyncio.Semaphore(concurrency), asyncio.Event()

        async def one(user_id: int, body: dict):
            await start.wait()
            async with slots:
                return await client.post(f"{url}/api/orders", json=body, headers={
                    "Authorization": f"Bearer {token_for(user_id)}"})

        tasks = [asyncio.create_task(one(uid, body)) for uid, body in bodies]
        start.set()
        return await asyncio.gather(*tasks)


def codes(responses) -> Counter:  # noqa: ANN001
    return Counter((r.status_code, r.json().get("code", "OK")) for r in responses)


async def test_hot_product_is_never_oversold(clean_db, db_kind):
    buyers, stock = (60, 20) if db_kind == "sqlite" else (300, 100)
    ids = await bulk_users(clean_db, buyers, balance=10_000)
    [hot] = await make_products(clean_db, (3_000, stock))
    async with live_server(clean_db, workers=2) as server:
        responses = await fire(server.url, [
            (uid, {"userId": uid, "items": [{"productId": hot, "quantity": 1}]})
            for uid in ids])
    assert codes(responses) == {(201, "OK"): stock, (409, "OUT_OF_STOCK"): buyers - stock}
    [(left,)] = await read(clean_db, select(products.c.stock).where(products.c.id == hot))
    assert left == 0
    balances = Counter(b for (b,) in await read(clean_db, select(wallets.c.balance)))
    assert balances == {7_000: stock, 10_000: buyers - stock}
    await audit_clean(clean_db)


async def test_one_user_thirty_parallel_orders_with_balance_for_four(clean_db):
    [uid] = await bulk_users(clean_db, 1, balance=4_000)
    [item] = await make_products(clean_db, (1_000, 100))
    async with live_server(clean_db, workers=2) as server:
        responses = await fire(server.url, [
            (uid, {"userId": uid, "items": [{"productId": item, "quantity": 1}]})
            for _ in range(30)])
    assert codes(responses) == {(201, "OK"): 4, (402, "INSUFFICIENT_BALANCE"): 26}
    [(balance,)] = await read(clean_db, select(wallets.c.balance))
    assert balance == 0
    await audit_clean(clean_db)


async def test_criss_crossing_multi_line_orders_never_surface_a_deadlock(clean_db, db_kind):
    count = 60 if db_kind == "sqlite" else 200
    ids = await bulk_users(clean_db, count, balance=1_000_000)
    items = await make_products(clean_db, *[(100 * (i + 1), 10_000) for i in range(6)])
    rng = random.Random(7)
    bodies = []
    for uid in ids:
        chosen = rng.sample(items, rng.randint(2, 6))  # random order, overlapping rows
        bodies.append((uid, {"userId": uid, "items": [
            {"productId": p, "quantity": rng.randint(1, 5)} for p in chosen]}))
    async with live_server(clean_db, workers=2) as server:
        responses = await fire(server.url, bodies)
    assert codes(responses) == {(201, "OK"): count}, {r.text for r in responses
                                                      if r.status_code != 201}
    await audit_clean(clean_db)


async def test_server_killed_under_order_load_leaves_the_books_straight(clean_db, db_kind):
    ids = await bulk_users(clean_db, 150, balance=100_000)
    [item] = await make_products(clean_db, (1_000, 100_000))
    async with live_server(clean_db, workers=2) as server:
        load = asyncio.create_task(fire(server.url, [
            (uid, {"userId": uid, "items": [{"productId": item, "quantity": 2}]})
            for uid in ids * 3], concurrency=50))
        await asyncio.sleep(0.5)
        os.killpg(server.process.pid, signal.SIGKILL)  # the whole process group, mid-flight
        await asyncio.gather(load, return_exceptions=True)
    await audit_clean(clean_db)
    async with live_server(clean_db, workers=1) as server:  # and it serves again
        after = await fire(server.url, [(ids[0], {"userId": ids[0], "items": [
            {"productId": item, "quantity": 1}]})])
    assert after[0].status_code == 201
    await audit_clean(clean_db)


async def test_a_consumer_killed_mid_batch_delivers_every_event_after_restart(clean_db):
    """The data platform holds every answer, so a batch stays in flight; the consumer is
    frozen (SIGSTOP) at a moment its lease is in the table, and killed there. The restarted
    consumer takes the events over once the lease runs out, and delivers every one."""
    ids = await bulk_users(clean_db, 40, balance=100_000)
    [item] = await make_products(clean_db, (1_000, 1_000))
    async with live_server(clean_db, workers=2) as server:
        responses = await fire(server.url, [(uid, {"userId": uid, "items": [
            {"productId": item, "quantity": 1}]}) for uid in ids])
    assert codes(responses) == {(201, "OK"): 40}
    folder = Path(tempfile.mkdtemp())
    record, hanging = folder / "events.jsonl", folder / "hanging"
    hanging.touch()
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "ecommerce", "dev-sink", "--port", str(port),
                             "--record", str(record), "--hold-while", str(hanging), "--quiet"])
    env = server_env(clean_db, DATA_PLATFORM_URL=f"http://127.0.0.1:{port}/events",
                     DATA_PLATFORM_SECRET="s", CONSUMER_LEASE_SECONDS="2")
    d = consumer_deliveries
    command = [sys.executable, "-m", "ecommerce", "consume", "--group", "data-platform"]

    def received() -> list[str]:
        if not record.exists():
            return []
        return [json.loads(line)["eventId"] for line in record.read_text().splitlines()]

    async def count(*where) -> int:  # noqa: ANN002
        return len(await read(clean_db, select(d.c.outbox_id).where(
            d.c.consumer == "data-platform", *where)))

    consumer = None
    try:
        consumer = subprocess.Popen(command, env=env)
        # Its posts hang until they time out and are retried, so a lease comes back after
        # every retry's backoff; freeze the consumer and look: killed only in a leased moment.
        while True:
            await until(lambda: count(d.c.lease.is_not(None)), what="the consumer took a batch",
                        every=0.02)
            consumer.send_signal(signal.SIGSTOP)
            if await count(d.c.lease.is_not(None)) > 0:
                break
            consumer.send_signal(signal.SIGCONT)
        consumer.send_signal(signal.SIGKILL)  # mid-batch: posts in flight, lease left behind
        consumer.wait()
        assert await count(d.c.lease.is_not(None)) > 0
        assert await count(d.c.status == "HANDLED") == 0
        hanging.unlink()  # the platform answers again
        consumer = subprocess.Popen(command, env=env)

        async def all_handled() -> bool:
            return await count(d.c.status == "HANDLED") == 40

        await until(all_handled, what="every event handled after the restart")
    finally:
        if consumer is not None:  # never left behind, frozen or not, whatever failed
            consumer.kill()
            consumer.wait()
        sink.terminate()
        sink.wait()
    stored = {event_id for (event_id,) in await read(clean_db, select(outbox.c.event_id))}
    assert set(received()) == stored and len(stored) == 40  # each at least once
    assert await count(d.c.status == "HANDLED") == 40
    await audit_clean(clean_db)
