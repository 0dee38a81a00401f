"""The outbox relay against a real HTTP receiver (`ecommerce dev-sink` in a process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from ecommerce.audit import audit_database
from ecommerce.events.models import outbox
from ecommerce.events.relay import Relay, signature
from tests.backends import REDIS_URL, require
from tests.e2e.conftest import free_port
from tests.factories import assert_error, make_admin, make_product, make_user

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
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    await client.get(f"http://127.0.0.1:{port}/")
                    break
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


async def rows(shop) -> list:
    async with shop.db.uow(write=False) as uow:
        return list((await uow.conn.execute(select(outbox).order_by(outbox.c.id))).all())


def relay_for(shop, url: str | None, **overrides) -> Relay:
    settings = shop.settings.model_copy(update={"data_platform_url": url,
                                                "data_platform_secret": SECRET, **overrides})
    return Relay(shop.db, settings, shop.ctx.redis, shop.clock)


async def test_events_are_delivered_signed_with_the_spec_body(shop, client):
    user = await make_user(shop, balance=50_000)
    product = await make_product(shop, price=7_000, stock=5)
    placed = await place(shop, client, user, product, 2)
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    async with sink() as (url, received):
        assert await relay_for(shop, url).run_once() == 2
        events = received()
    assert [e["eventType"] for e in events] == ["order.completed", "order.cancelled"]
    completed = events[0]
    assert completed == {
        "eventId": completed["eventId"], "eventType": "order.completed",
        "occurredAt": completed["occurredAt"], "orderId": placed["orderId"],
        "userId": user.id, "items": [{"productId": product, "quantity": 2, "unitPrice": 7_000}],
        "totalPrice": 14_000, "discountAmount": 0, "paidAmount": 14_000, "couponCode": None}
    stored = await rows(shop)
    assert [r.status for r in stored] == ["DELIVERED", "DELIVERED"]
    assert [r.event_id for r in stored] == [e["eventId"] for e in events]
    body = stored[0].payload.encode()  # the signature the sink checked, over these bytes
    assert signature(SECRET, body).startswith("sha256=") and len(signature(SECRET, body)) == 71


async def test_a_bad_signature_is_refused_and_retried_later(shop, client):
    user = await make_user(shop, balance=50_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=5))
    async with sink(secret="another-secret") as (url, received):
        assert await relay_for(shop, url).run_once() == 1
        assert received() == []
    [row] = await rows(shop)
    assert (row.status, row.attempts, row.last_error) == ("PENDING", 1, "HTTP 401")
    assert row.next_attempt_at > shop.clock.now()


async def test_platform_down_then_back_delivers_everything(shop, client):
    user = await make_user(shop, balance=90_000)
    product = await make_product(shop, price=100, stock=50)
    for _ in range(5):
        await place(shop, client, user, product)
    port = free_port()
    relay = relay_for(shop, f"http://127.0.0.1:{port}/events", relay_backoff_seconds=0.01)
    assert await relay.run_once() == 5  # nothing listening: every attempt fails
    assert {r.attempts for r in await rows(shop)} == {1}
    await asyncio.sleep(0.05)
    async with sink(port) as (_, received):
        assert await relay.run_once() == 5
        assert len({e["eventId"] for e in received()}) == 5
    assert {r.status for r in await rows(shop)} == {"DELIVERED"}


async def test_failed_after_the_last_attempt_then_admin_retry(shop, client):
    admin = await make_admin(shop)
    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    port = free_port()
    relay = relay_for(shop, f"http://127.0.0.1:{port}/events", relay_backoff_seconds=0.0,
                      relay_max_attempts=3)
    for _ in range(3):
        assert await relay.run_once() == 1
    assert await relay.run_once() == 0  # FAILED events are not picked up again
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("FAILED", 3)
    failed = await client.get("/api/admin/events?status=FAILED", headers=admin.headers)
    assert [e["id"] for e in failed.json()] == [row.id]
    retried = await client.post(f"/api/admin/events/{row.id}/retry", headers=admin.headers)
    assert retried.status_code == 200 and retried.json()["status"] == "PENDING"
    assert_error(await client.post(f"/api/admin/events/{row.id}/retry", headers=admin.headers),
                 409, "EVENT_NOT_RETRYABLE")
    assert_error(await client.post("/api/admin/events/999999/retry", headers=admin.headers),
                 404, "EVENT_NOT_FOUND")
    assert_error(await client.get("/api/admin/events", headers=user.headers), 403, "FORBIDDEN")
    async with sink(port) as (_, received):
        assert await relay.run_once() == 1
        assert len(received()) == 1
    delivered = await client.get("/api/admin/events?status=DELIVERED", headers=admin.headers)
    assert delivered.headers["X-Total-Count"] == "1"


async def test_a_failed_event_is_retried_on_its_own_slowly_for_a_day(shop, client):
    from datetime import timedelta

    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    port = free_port()
    relay = relay_for(shop, f"http://127.0.0.1:{port}/events", relay_backoff_seconds=0.0,
                      relay_max_attempts=2, relay_slow_retry_seconds=600,
                      relay_slow_retry_hours=30)
    for _ in range(2):
        assert await relay.run_once() == 1
    [row] = await rows(shop)
    assert row.status == "FAILED"
    assert await relay.run_once() == 0  # not before its slow retry is due
    shop.clock.advance(timedelta(seconds=601))
    assert await relay.run_once() == 1  # due again on its own; the platform is still down
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("FAILED", 3)
    shop.clock.advance(timedelta(hours=20))  # a long outage, then the platform is back
    async with sink(port) as (_, received):
        assert await relay.run_once() == 1
        assert len(received()) == 1
    [row] = await rows(shop)
    assert row.status == "DELIVERED"


async def test_slow_retries_stop_once_the_event_is_older_than_the_horizon(shop, client):
    from datetime import timedelta

    user = await make_user(shop, balance=90_000)
    await place(shop, client, user, await make_product(shop, price=100, stock=50))
    relay = relay_for(shop, f"http://127.0.0.1:{free_port()}/events",
                      relay_backoff_seconds=0.0, relay_max_attempts=1,
                      relay_slow_retry_hours=30)
    assert await relay.run_once() == 1
    shop.clock.advance(timedelta(hours=31))
    assert await relay.run_once() == 0  # left for an admin's retry
    [row] = await rows(shop)
    assert (row.status, row.attempts) == ("FAILED", 1)


async def test_two_relays_at_once_send_each_event_once(shop, client):
    user = await make_user(shop, balance=900_000)
    product = await make_product(shop, price=100, stock=500)
    for _ in range(40):
        await place(shop, client, user, product)
    async with sink() as (url, received):
        one, two = relay_for(shop, url), relay_for(shop, url)
        while sum(await asyncio.gather(one.run_once(10), two.run_once(10))):
            pass
        ids = [e["eventId"] for e in received()]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert not any((await audit_database(shop.db)).values())


class TestStream:
    @pytest.fixture
    def settings_overrides(self):
        from tests.conftest import RUN_ID

        return {"redis_url": require("redis", REDIS_URL), "event_stream": "orders-stream",
                "redis_prefix": f"test:{RUN_ID}:stream"}

    async def test_events_are_published_to_the_redis_stream_under_the_prefix(self, shop,
                                                                              client):
        user = await make_user(shop, balance=9_000)
        placed = await place(shop, client, user, await make_product(shop, price=100, stock=5))
        stream = f"{shop.settings.redis_prefix}:orders-stream"  # every key has the prefix
        redis = Redis.from_url(shop.settings.redis_url, decode_responses=True)
        try:
            await redis.delete(stream)
            assert await relay_for(shop, None).run_once() == 1
            assert await redis.exists("orders-stream") == 0
            [(_, fields)] = await redis.xrange(stream)
            await redis.delete(stream)
        finally:
            await redis.aclose()
        assert fields["eventType"] == "order.completed"
        assert json.loads(fields["payload"])["orderId"] == placed["orderId"]
        [row] = await rows(shop)
        assert row.streamed_at is not None and row.status == "PENDING"  # no platform URL


async def test_admins_see_where_events_go(shop, client):
    admin = await make_admin(shop)
    status = await client.get("/api/admin/events/status", headers=admin.headers)
    assert status.json() == {"dataPlatform": False, "stream": False, "relay": False}
