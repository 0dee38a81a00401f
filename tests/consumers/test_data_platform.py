"""The `data-platform` consumer against a real HTTP receiver (`ecommerce dev-sink` in a
process), on each broker (tests/consumers/conftest.py), and what only a Redis stream or a
Kafka topic does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from sqlalchemy import select

from ecommerce.audit import audit_database
from ecommerce.consumers import repository
from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.consumers.models import consumer_deliveries
from ecommerce.consumers.runner import Runner
from ecommerce.consumers.signing import signature
from ecommerce.events.models import outbox
from ecommerce.events.publisher import Publisher, StreamSink
from tests.backends import REDIS_URL, require
from tests.consumers.brokers import drain, publish
from tests.e2e.conftest import free_port
from tests.factories import assert_error, make_admin, make_product, make_user
from tests.waiting import until

SECRET = "platform-secret"


@contextlib.asynccontextmanager
async def sink(port: int | None = None, secret: str = SECRET):
    """`ecommerce dev-sink` recording every accepted event; yields (url, read_events)."""
    port = port or free_port()
    record = Path(tempfile.mkdtemp()) / "events.jsonl"
    process = subprocess.Popen([sys.executable, "-m", "ecommerce", "dev-sink", "--port",
                                str(port), "--secret", secret, "--record", str(record),
                                "--quiet"])
    try:
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 60  # a busy machine starts a process slowly
            while True:
                with contextlib.suppress(httpx.TransportError):
                    await client.get(f"http://127.0.0.1:{port}/")
                    break
                assert process.poll() is None, "dev-sink exited"
                assert time.monotonic() < deadline, "dev-sink did not start"
                await asyncio.sleep(0.1)

        def events() -> list[dict]:
            if not record.exists():
                return []
            return [json.loads(line) for line in record.read_text().splitlines()]

        yield f"http://127.0.0.1:{port}/events", events
    finally:
        process.terminate()
        process.wait()


async def place(shop, client, user, product, quantity=1) -> dict:
    response = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "items": [{"productId": product, "quantity": quantity}]})
    assert response.status_code == 201, response.text
    return response.json()


async def rows(shop, consumer: str = "data-platform") -> list:
    """Every outbox event with this consumer's row for it (None columns: no row yet)."""
    d = consumer_deliveries
    joined = outbox.outerjoin(d, (d.c.outbox_id == outbox.c.id) & (d.c.consumer == consumer))
    async with shop.db.uow(write=False) as uow:
        return list((await uow.conn.execute(
            select(outbox.c.id, outbox.c.event_id, outbox.c.event_type, outbox.c.payload,
                   outbox.c.streamed_at, d.c.status, d.c.attempts, d.c.last_error,
                   d.c.next_attempt_at, d.c.outcome)
            .select_from(joined).order_by(outbox.c.id))).all())


def runner_for(shop, url: str, **overrides) -> Runner:
    settings = shop.settings.model_copy(update={"data_platform_url": url,
                                                "data_platform_secret": SECRET, **overrides})
    runner = Runner(DataPlatform(settings), shop.db, settings, shop.ctx.redis, shop.clock)
    shop.closing.append(runner)
    return runner


async def test_events_are_delivered_signed_with_the_spec_body(shop, client):
    user = await make_user(shop, balance=50_000)
    product = await make_product(shop, price=7_000, stock=5)
    placed = await place(shop, client, user, product, 2)
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    async with sink() as (url, received):
        assert await drain(runner_for(shop, url)) == 2
        events = received()
    assert [e["eventType"] for e in events] == ["order.completed", "order.cancelled"]
    completed = events[0]
    assert completed == {
        "eventId": completed["eventId"], "eventType": "order.completed",
        "occurredAt": completed["occurredAt"], "orderId": placed["orderId"],
        "userId": user.id, "items": [{"productId": product, "quantity": 2, "unitPrice": 7_000}],
        "totalPrice": 14_000, "discountAmount": 0, "paidAmount": 14_000, "couponCode": None}
    stored = await rows(shop)
    assert [(r.status, r.outcome) for r in stored] == [("HANDLED", "delivered")] * 2
    assert [r.event_id for r in stored] == [e["eventId"] for e in events]
    body = stored[0].payload.encode()  # the signature the sink checked, over these bytes
    assert signature(SECRET, body).startswith("sha256=") and len(signature(SECRET, body)) == 71
    assert not any((await audit_database(shop.db)).values())


async def test_a_bad_signature_is_refused_and_retried_later(shop, client):
    user = await make_user(shop, balance=50_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=5))
    async with sink(secret="another-secret") as (url, received):
        assert await drain(runner_for(shop, url)) == 1
        assert received() == []
    [row] = await rows(shop)
    assert (row.status, row.attempts, row.last_error) == ("RETRY", 1, "HTTP 401")
    assert row.next_attempt_at > shop.clock.now()


async def test_platform_down_then_back_delivers_everything(shop, client):
    user = await make_user(shop, balance=90_000)
    product = await make_product(shop, price=100, stock=50)
    for _ in range(5):
        await place(shop, client, user, product)
    port = free_port()
    runner = runner_for(shop, f"http://127.0.0.1:{port}/events")
    assert await drain(runner) == 5  # nothing listening: every attempt fails
    assert {(r.status, r.attempts) for r in await rows(shop)} == {("RETRY", 1)}
    shop.clock.advance(timedelta(seconds=1.5))  # the first backoff
    async with sink(port) as (_, received):
        assert await drain(runner) == 5
        assert len({e["eventId"] for e in received()}) == 5
    assert {r.status for r in await rows(shop)} == {"HANDLED"}


async def test_dead_after_the_last_attempt_then_admin_retry(shop, client):
    admin = await make_admin(shop)
    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    port = free_port()
    runner = runner_for(shop, f"http://127.0.0.1:{port}/events", consumer_max_attempts=3)
    for _ in range(3):
        assert await drain(runner) == 1
        shop.clock.advance(timedelta(seconds=5))
    assert await drain(runner) == 0  # dead events wait for their slow retry or an admin
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("DEAD", 3)
    failed = await client.get("/api/admin/events?status=FAILED", headers=admin.headers)
    assert [e["id"] for e in failed.json()] == [row.id]
    dead = await client.get("/api/admin/consumers/data-platform/dead", headers=admin.headers)
    assert [(e["eventId"], e["attempts"]) for e in dead.json()] == [(row.event_id, 3)]
    retried = await client.post(f"/api/admin/events/{row.id}/retry", headers=admin.headers)
    assert retried.status_code == 200 and retried.json()["status"] == "PENDING"
    assert_error(await client.post(f"/api/admin/events/{row.id}/retry", headers=admin.headers),
                 409, "EVENT_NOT_RETRYABLE")
    assert_error(await client.post("/api/admin/events/999999/retry", headers=admin.headers),
                 404, "EVENT_NOT_FOUND")
    assert_error(await client.get("/api/admin/events", headers=user.headers), 403, "FORBIDDEN")
    async with sink(port) as (_, received):
        assert await drain(runner) == 1
        assert len(received()) == 1
    delivered = await client.get("/api/admin/events?status=DELIVERED", headers=admin.headers)
    assert delivered.headers["X-Total-Count"] == "1"


async def test_a_dead_event_is_retried_on_its_own_slowly_for_a_day(shop, client):
    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    port = free_port()
    runner = runner_for(shop, f"http://127.0.0.1:{port}/events", consumer_max_attempts=2,
                        consumer_slow_retry_seconds=600, consumer_slow_retry_hours=30)
    for _ in range(2):
        assert await drain(runner) == 1
        shop.clock.advance(timedelta(seconds=5))
    [row] = await rows(shop)
    assert row.status == "DEAD"
    assert await drain(runner) == 0  # not before its slow retry is due
    shop.clock.advance(timedelta(seconds=601))
    assert await drain(runner) == 1  # due again on its own; the platform is still down
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("DEAD", 3)
    shop.clock.advance(timedelta(hours=20))  # a long outage, then the platform is back
    async with sink(port) as (_, received):
        assert await drain(runner) == 1
        assert len(received()) == 1
    [row] = await rows(shop)
    assert row.status == "HANDLED"


async def test_slow_retries_stop_once_the_event_is_older_than_the_horizon(shop, client):
    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    runner = runner_for(shop, f"http://127.0.0.1:{free_port()}/events",
                        consumer_max_attempts=1, consumer_slow_retry_hours=30)
    assert await drain(runner) == 1
    shop.clock.advance(timedelta(hours=31))
    assert await drain(runner) == 0  # left for an admin's retry
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("DEAD", 1)


async def test_two_runners_at_once_send_each_event_once(shop, client):
    """Two workers pass over the same 40 events at once until every one is settled. A
    pass may take nothing while events remain (the sweep took older ones, so the broker's
    next read is of events already handled): the loop ends on the events' rows, not on an
    empty pass. An event the sink received twice must have a failed attempt on record (a
    delivery that timed out on a busy machine is sent again, as promised); one taken by
    both workers at once would show as a repeat without one."""
    user = await make_user(shop, balance=900_000)
    product = await make_product(shop, price=100, stock=500)
    for _ in range(40):
        await place(shop, client, user, product)
    async with sink() as (url, received):
        one = runner_for(shop, url, consumer_batch=10)
        two = runner_for(shop, url, consumer_batch=10)
        deadline = time.monotonic() + 120
        while {row.status for row in await rows(shop)} != {"HANDLED"}:
            assert time.monotonic() < deadline, [r.status for r in await rows(shop)]
            if not sum(await asyncio.gather(one.run_once(), two.run_once())):
                shop.clock.advance(timedelta(seconds=5))  # a retry due now, not later
        ids = [e["eventId"] for e in received()]
    stored = await rows(shop)
    assert set(ids) == {row.event_id for row in stored} and len(stored) == 40
    repeated = {event_id for event_id in ids if ids.count(event_id) > 1}
    assert all(row.attempts > 0 for row in stored if row.event_id in repeated), stored
    assert not any((await audit_database(shop.db)).values())


async def test_an_orders_events_arrive_oldest_first_even_across_workers(shop, client):
    user = await make_user(shop, balance=50_000)
    placed = await place(shop, client, user, await make_product(shop, price=1_000, stock=5))
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    completed, cancelled = await rows(shop)
    async with shop.db.uow() as uow:  # another worker took order.completed and is slow
        [event] = await repository.outbox_rows(uow.conn, [completed.id])
        await repository.claim(uow.conn, "data-platform", [event], "elsewhere",
                               shop.clock.now(), 30, shop.clock.now())
    async with sink() as (url, received):
        runner = runner_for(shop, url)
        await drain(runner)
        assert received() == []  # order.cancelled waits for its order.completed
        assert (await rows(shop))[1].status == "RETRY"
        shop.clock.advance(timedelta(seconds=31))  # that worker died: its lease runs out
        await drain(runner)  # both due: taken together, handled in their order
        assert [e["eventType"] for e in received()] == ["order.completed", "order.cancelled"]


class TestStream:
    @pytest.fixture
    def settings_overrides(self):
        from tests.conftest import RUN_ID

        return {"redis_url": require("redis", REDIS_URL), "event_stream": "orders-stream",
                "redis_prefix": f"test:{RUN_ID}:stream", "consumer_sweep_grace_seconds": 0}

    async def test_events_go_through_the_stream_under_the_prefix(self, shop, client):
        user = await make_user(shop, balance=9_000)
        product = await make_product(shop, price=100, stock=5)
        stream = f"{shop.settings.redis_prefix}:orders-stream"  # every key has the prefix
        redis = Redis.from_url(shop.settings.redis_url, decode_responses=True)
        try:
            async with sink() as (url, received):
                runner = runner_for(shop, url)
                assert await runner.run_once() == 0  # the group is made at the stream's end
                placed = await place(shop, client, user, product)
                assert await Publisher(shop.db, shop.settings, StreamSink(
                    shop.ctx.redis, shop.settings.stream_key), shop.clock).run_once() == 1
                assert await redis.exists("orders-stream") == 0
                [(_, fields)] = await redis.xrange(stream)
                assert await runner.run_once() == 1
                assert [e["orderId"] for e in received()] == [placed["orderId"]]
                assert (await redis.xpending(stream, "data-platform"))["pending"] == 0
        finally:
            await redis.delete(stream)
            await redis.aclose()
        [row] = await rows(shop)
        assert fields == {"outboxId": str(row.id), "eventId": row.event_id,
                          "eventType": "order.completed"}
        assert row.streamed_at is not None and row.status == "HANDLED"

    async def test_a_flushed_stream_is_rebuilt_from_the_outbox(self, shop, client):
        user = await make_user(shop, balance=90_000)
        product = await make_product(shop, price=100, stock=50)
        stream = f"{shop.settings.redis_prefix}:orders-stream"
        publisher = Publisher(shop.db, shop.settings,
                              StreamSink(shop.ctx.redis, shop.settings.stream_key), shop.clock)
        redis = Redis.from_url(shop.settings.redis_url, decode_responses=True)
        try:
            async with sink() as (url, received):
                runner = runner_for(shop, url)
                await runner.run_once()
                for _ in range(3):
                    await place(shop, client, user, product)
                assert await publisher.run_once() == 3
                await redis.delete(stream)  # Redis lost everything: stream and groups
                await place(shop, client, user, product)
                assert await publisher.run_once() == 1  # a new stream, without the group
                assert await drain(runner) == 4  # NOGROUP: a new group, and the sweep
                assert len({e["eventId"] for e in received()}) == 4
        finally:
            await redis.delete(stream)
            await redis.aclose()
        assert {r.status for r in await rows(shop)} == {"HANDLED"}
        assert not any((await audit_database(shop.db)).values())

    async def test_a_steady_trickle_of_orders_is_taken_in_batches(self, shop, client):
        """After a pass that took some events but not a full batch, the publisher and the
        consumer wait CONSUMER_LINGER_SECONDS (decision 88): orders placed one after
        another go on in batches. Each pass settles its events at one moment, so the
        passes are the distinct delivery times, and two passes are at least the linger
        apart. The publisher's batches likewise (one `streamed_at` each)."""
        linger, count = 0.3, 30
        user = await make_user(shop, balance=900_000)
        product = await make_product(shop, price=100, stock=count)
        stop = asyncio.Event()
        async with sink() as (url, received):
            # No periodic sweep in the middle (it may take events in the same pass).
            runner = runner_for(shop, url, consumer_linger_seconds=linger,
                                consumer_sweep_seconds=3600.0)
            await runner.run_once()  # the group, at the stream's end
            publisher = Publisher(shop.db, runner.settings, StreamSink(
                shop.ctx.redis, shop.settings.stream_key), shop.clock)
            tasks = [asyncio.create_task(runner.run_forever(stop)),
                     asyncio.create_task(publisher.run_forever(stop))]
            try:
                for _ in range(count):
                    await place(shop, client, user, product)
                    await asyncio.sleep(0.02)  # one by one, as shoppers come
                await until(lambda: len(received()) >= count, what="every event delivered")
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        async with shop.db.uow(write=False) as uow:
            times = sorted(set((await uow.conn.execute(
                select(consumer_deliveries.c.handled_at))).scalars()))
        span = (times[-1] - times[0]).total_seconds()
        assert len({e["eventId"] for e in received()}) == count
        # Before: a pass for every order (30 passes in 1.2 s); how many it takes now
        # depends on how fast the orders come, but never more than the linger allows.
        assert len(times) <= span / linger + 1, (len(times), span)
        # The publisher too: each of its batches is marked streamed at one moment.
        async with shop.db.uow(write=False) as uow:
            sent = sorted(set((await uow.conn.execute(select(outbox.c.streamed_at))).scalars()))
        sending = (sent[-1] - sent[0]).total_seconds()
        assert len(sent) <= sending / linger + 1, (len(sent), sending)


class TestKafka:
    """Events reach the consumers through the Kafka topic alone: the sweep takes only
    events an hour old, so none here."""

    @pytest.fixture
    def settings_overrides(self, kafka):  # noqa: ANN001
        return {"event_broker": "kafka", "kafka_bootstrap_servers": kafka.servers,
                "kafka_partitions": 3, "kafka_session_timeout_seconds": 2,
                "consumer_sweep_grace_seconds": 3600}

    async def orders(self, shop, client, count: int) -> list[int]:  # noqa: ANN001
        """`count` orders, every other one cancelled: one or two events each."""
        user = await make_user(shop, balance=900_000)
        product = await make_product(shop, price=1_000, stock=100)
        ids = []
        for n in range(count):
            placed = await place(shop, client, user, product)
            if n % 2 == 0:
                cancelled = await client.post(f"/api/orders/{placed['orderId']}/cancel",
                                              headers=user.headers)
                assert cancelled.status_code == 200, cancelled.text
            ids.append(placed["orderId"])
        return ids

    async def settle(self, shop, *runners: Runner) -> None:  # noqa: ANN001
        async def all_handled() -> bool:
            await asyncio.gather(*(runner.run_once(block_ms=200) for runner in runners))
            return {row.status for row in await rows(shop)} == {"HANDLED"}

        await until(all_handled, what="every event handled through the topic")

    async def test_events_go_through_the_topic_keyed_by_order_in_order(self, shop, client,
                                                                        kafka):
        orders = await self.orders(shop, client, 6)
        async with sink() as (url, received):
            runner = runner_for(shop, url)
            assert await publish(runner) == 9
            await self.settle(shop, runner)
            got = received()
        by_order: dict[int, list[str]] = {}
        for event in got:
            by_order.setdefault(event["orderId"], []).append(event["eventType"])
        assert by_order == {order: ["order.completed", "order.cancelled"] if n % 2 == 0
                            else ["order.completed"] for n, order in enumerate(orders)}
        assert len(got) == 9  # each once
        stored = await rows(shop)
        assert all(row.streamed_at is not None for row in stored)
        # On the topic: keyed by the order, one order's events in one partition, and the
        # group's offsets committed past the last message of each once settled.
        messages = await topic_messages(kafka.servers, shop.settings.topic, 9)
        values = sorted((json.loads(m.value) for m in messages),
                        key=lambda value: int(value["outboxId"]))
        assert values == [{"outboxId": str(row.id), "eventId": row.event_id,
                           "eventType": row.event_type, "orderId": json.loads(
                               row.payload).get("orderId"),
                           "event": json.loads(row.payload)} for row in stored]
        placed_in: dict[bytes, set[int]] = {}
        for m in messages:
            placed_in.setdefault(m.key, set()).add(m.partition)
        assert set(placed_in) == {str(order).encode() for order in orders}
        assert all(len(found) == 1 for found in placed_in.values())
        consumer = runner.broker.consumer
        assert consumer is not None
        ends: dict[Any, int] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            ends[tp] = max(ends.get(tp, 0), m.offset + 1)
        assert {tp: await consumer.committed(tp) for tp in ends} == ends

    async def test_two_members_of_the_group_share_the_events_each_once(self, shop, client):
        await self.orders(shop, client, 20)
        async with sink() as (url, received):
            one, two = runner_for(shop, url), runner_for(shop, url)
            assert await publish(one) == 30
            await self.settle(shop, one, two)
            ids = [e["eventId"] for e in received()]

            async def shared() -> bool:  # the group's three partitions split between them
                await asyncio.gather(one.run_once(block_ms=100), two.run_once(block_ms=100))
                held = [runner.broker.consumer.assignment() for runner in (one, two)
                        if runner.broker.consumer is not None]
                return (len(held) == 2 and all(held) and not held[0] & held[1]
                        and len(held[0] | held[1]) == 3)

            await until(shared, what="both members holding partitions")
        assert sorted(ids) == sorted({row.event_id for row in await rows(shop)})

    async def test_a_pass_that_failed_before_settling_reads_its_events_again(self, shop,
                                                                             client):
        await self.orders(shop, client, 3)
        async with sink() as (url, received):
            runner = runner_for(shop, url)
            await publish(runner)
            process, failed = runner._process, []

            async def fails_once(ids):  # noqa: ANN001, ANN202 - the database fell over
                if ids and not failed:
                    failed.append(ids)
                    raise ConnectionError("the database is gone")
                return await process(ids)

            runner._process = fails_once  # type: ignore[method-assign]

            async def read_and_fail() -> bool:
                with contextlib.suppress(ConnectionError):
                    await runner.run_once(block_ms=200)
                return bool(failed)

            await until(read_and_fail, what="a pass that read the events and failed")
            assert sorted(failed[0]) == [row.id for row in await rows(shop)]
            await self.settle(shop, runner)  # read again from the topic: no sweep here
            assert len({e["eventId"] for e in received()}) == 5


async def topic_messages(servers: str, topic: str, count: int, partitions: int = 3) -> list:
    """The topic's first `count` messages, read apart from any group."""
    reader = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
    await reader.start()
    try:
        every = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(every)
        await reader.seek_to_beginning(*every)
        found: list = []

        async def all_read() -> bool:
            for records in (await reader.getmany(timeout_ms=200)).values():
                found.extend(records)
            return len(found) >= count

        await until(all_read, what=f"{count} messages on {topic}")
        return found
    finally:
        await reader.stop()


async def test_admins_see_where_events_go(shop, client, broker):
    admin = await make_admin(shop)
    status = await client.get("/api/admin/events/status", headers=admin.headers)
    assert status.json() == {"dataPlatform": False, "stream": broker != "outbox",
                             "broker": broker, "relay": False}
