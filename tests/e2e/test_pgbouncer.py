"""The shop through PgBouncer in transaction mode (issue 19): migrations, orders (the
order function included), a flash sale, cancellations and the stream publisher, with two server
processes sharing a server pool smaller than their client pools."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from sqlalchemy import func, select

from ecommerce.events.models import outbox
from ecommerce.orders.models import orders
from ecommerce.platform.migrate import upgrade
from tests.backends import POSTGRES_URL, RUN_ID, require
from tests.e2e.conftest import (
    audit_clean,
    bulk_users,
    live_server,
    many_connections,
    own_pgbouncer,
    token_for,
)
from tests.e2e.test_coupon_storm import holders, make_coupon
from tests.e2e.test_order_storm import make_products, read
from tests.scratch import create_scratch_database, drop_scratch_database
from tests.waiting import until


async def post(client: httpx.AsyncClient, url: str, user_id: int, body: dict,
               key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token_for(user_id)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(url, json=body, headers=headers)


async def test_the_shop_through_pgbouncer_in_transaction_mode(clean_redis):
    server = require("postgres", POSTGRES_URL)
    url = await create_scratch_database(server, f"ecommerce_bouncer_{RUN_ID}")
    try:
        with own_pgbouncer(url, pool_size=3) as (through, _):
            upgrade(through)  # every migration, the PL/pgSQL functions too, through it
            upgrade(through)  # and again: nothing to do, the lock taken and released
            buyers = await bulk_users(url, 120, balance=100_000)
            [item] = await make_products(url, (1_000, 100))
            await make_coupon(url, "BOUNCE", 40)
            async with live_server(through, workers=2, redis_url=clean_redis,
                                   RUN_CONSUMERS="true") as live:
                async with many_connections(100) as client:
                    keys = {uid: str(uuid.uuid4()) for uid in buyers}
                    body = {"items": [{"productId": item, "quantity": 1}]}
                    placed = await asyncio.gather(*[
                        post(client, f"{live.url}/api/orders", uid, {"userId": uid, **body},
                             keys[uid]) for uid in buyers])
                    # The same keys again, at once: the same answers, nothing placed twice.
                    again = await asyncio.gather(*[
                        post(client, f"{live.url}/api/orders", uid, {"userId": uid, **body},
                             keys[uid]) for uid in buyers[:30]])
                    claims = await asyncio.gather(*[
                        post(client, f"{live.url}/api/coupons/claim", uid,
                             {"userId": uid, "couponCode": "BOUNCE"}) for uid in buyers])
                    paid = [(r.json()["orderId"], r.json()["userId"]) for r in placed
                            if r.status_code == 201]
                    cancelled = await asyncio.gather(*[
                        post(client, f"{live.url}/api/orders/{order_id}/cancel", uid, {})
                        for order_id, uid in paid[:10]])
                    listed = await client.get(f"{live.url}/api/products?sort=popular")
                    ready = await client.get(f"{live.url}/readyz")
                    async def streamed() -> bool:  # the publisher copies every event
                        unstreamed = await read(url, select(func.count()).select_from(outbox)
                                                .where(outbox.c.streamed_at.is_(None)))
                        return unstreamed == [(0,)]

                    waiting = [(0,)] if await until(streamed, what="every event streamed",
                                                    every=0.1) else None
        statuses = Counter((r.status_code, r.json().get("code", "OK")) for r in placed)
        assert statuses == {(201, "OK"): 100, (409, "OUT_OF_STOCK"): 20}, statuses
        for first, repeat in zip(placed[:30], again, strict=True):
            assert (repeat.status_code, repeat.json()) == (first.status_code, first.json())
        issued = Counter(r.status_code for r in claims)
        assert issued == {200: 40, 409: 80}, issued
        assert sorted(await holders(url, "BOUNCE")) == sorted(
            r.json()["userId"] for r in claims if r.status_code == 200)
        assert [r.status_code for r in cancelled] == [200] * 10
        assert listed.status_code == 200 and ready.status_code == 200
        assert await read(url, select(func.count()).select_from(orders)) == [(100,)]
        assert waiting == [(0,)]
        await audit_clean(url)
    finally:
        await drop_scratch_database(server, url)
