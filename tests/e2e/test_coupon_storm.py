"""Flash sales under real parallelism: thousands of claims over two server processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import insert, select

from ecommerce.coupons.models import coupons, user_coupons
from ecommerce.platform.database import Database
from tests.e2e.conftest import (
    audit_clean,
    bulk_users,
    live_server,
    many_connections,
    own_redis,
    token_for,
)


async def make_coupon(database_url: str, code: str, quantity: int) -> None:
    now = datetime.now(UTC)
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            await uow.conn.execute(insert(coupons).values(
                code=code, name=code, discount_type="FIXED", discount_value=1_000,
                min_order_amount=0, total_quantity=quantity, issued_quantity=0,
                issue_starts_at=now, valid_days=7, created_at=now))
    finally:
        await db.dispose()


async def holders(database_url: str, code: str) -> list[int]:
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow(write=False) as uow:
            return list((await uow.conn.execute(
                select(user_coupons.c.user_id).join(coupons)
                .where(coupons.c.code == code))).scalars())
    finally:
        await db.dispose()


async def storm(url: str, code: str, user_ids: list[int], *, during=None):  # noqa: ANN001
    """Every user claims once, all at once; `during` runs in the middle of it."""
    async with many_connections(200) as client:
        start = asyncio.Event()
        # httpx's pool slows down badly with thousands of waiters: queue them here instead.
        slots = asyncio.Semaphore(200)

        async def one(user_id: int):
            await start.wait()
            async with slots:
                for attempt in (1, 2):
                    try:
                        response = await client.post(
                            f"{url}/api/coupons/claim",
                            json={"userId": user_id, "couponCode": code},
                            headers={"Authorization": f"Bearer {token_for(user_id)}"})
                    except httpx.TransportError:
                        # The answer was lost on the way (a connection reset, seen rarely
                        # with several test processes at once): retry once, as a client would.
                        # The claim may have happened; `outcome` counts a retry's "already
                        # claimed" as the issue it was, and the tests check the holders.
                        if attempt == 2:
                            raise
                        continue
                    response.claimer, response.retried = user_id, attempt == 2
                    return response

        tasks = [asyncio.create_task(one(uid)) for uid in user_ids]
        start.set()
        if during is not None:
            await asyncio.sleep(0.3)
            await during()
        responses = await asyncio.gather(*tasks)
    return responses


def outcome(responses) -> Counter:  # noqa: ANN001
    """(status, code) per answer; a retried claim answered "already claimed" was issued by
    the attempt whose answer was lost, and counts as that issue."""
    def key(r) -> tuple[int, str]:  # noqa: ANN001
        found = (r.status_code, r.json().get("code", "ISSUED"))
        return (200, "ISSUED") if r.retried and found[1] == "COUPON_ALREADY_CLAIMED" else found

    return Counter(key(r) for r in responses)


def winners(responses) -> list[int]:  # noqa: ANN001
    """The claimers whose claim issued a coupon, as the answers say (see `outcome`)."""
    return sorted(r.claimer for r in responses
                  if r.status_code == 200 or (r.retried and r.json().get("code")
                                              == "COUPON_ALREADY_CLAIMED"))


@pytest.mark.parametrize("users, quantity", [(1000, 100)])
async def test_flash_sale_on_a_server_database_with_redis(clean_db, db_kind, clean_redis,
                                                          users, quantity):
    if db_kind == "sqlite":
        pytest.skip("the embedded default has its own storm below")
    ids = await bulk_users(clean_db, users)
    await make_coupon(clean_db, "STORM", quantity)
    async with live_server(clean_db, workers=2, redis_url=clean_redis) as server:
        responses = await storm(server.url, "STORM", ids)
    assert outcome(responses) == {(200, "ISSUED"): quantity,
                                  (409, "COUPON_SOLD_OUT"): users - quantity}
    assert sorted(await holders(clean_db, "STORM")) == winners(responses)
    await audit_clean(clean_db)


async def test_flash_sale_on_the_embedded_default(clean_db, db_kind):
    if db_kind != "sqlite":
        pytest.skip("SQLite only")
    ids = await bulk_users(clean_db, 500)
    await make_coupon(clean_db, "LOCAL", 50)
    async with live_server(clean_db, workers=2) as server:
        responses = await storm(server.url, "LOCAL", ids)
    assert outcome(responses) == {(200, "ISSUED"): 50, (409, "COUPON_SOLD_OUT"): 450}
    assert sorted(await holders(clean_db, "LOCAL")) == winners(responses)
    await audit_clean(clean_db)


async def test_redis_flushed_in_the_middle_of_a_storm(clean_db, db_kind, redis_url):
    if db_kind == "sqlite":
        pytest.skip("server databases only")
    ids = await bulk_users(clean_db, 1000)
    await make_coupon(clean_db, "FLUSH", 100)
    with own_redis() as (private_url, _):
        async def flush() -> None:
            client = Redis.from_url(private_url)
            await client.flushall()
            await client.aclose()

        async with live_server(clean_db, workers=2, redis_url=private_url) as server:
            responses = await storm(server.url, "FLUSH", ids, during=flush)
    assert outcome(responses) == {(200, "ISSUED"): 100, (409, "COUPON_SOLD_OUT"): 900}
    assert sorted(await holders(clean_db, "FLUSH")) == winners(responses)
    await audit_clean(clean_db)


async def test_redis_stopped_in_the_middle_of_a_storm(clean_db, db_kind, redis_url):
    if db_kind == "sqlite":
        pytest.skip("server databases only")
    ids = await bulk_users(clean_db, 1000)
    await make_coupon(clean_db, "STOP", 100)
    with own_redis() as (private_url, redis_process):
        async def stop() -> None:
            redis_process.kill()

        async with live_server(clean_db, workers=2, redis_url=private_url) as server:
            responses = await storm(server.url, "STOP", ids, during=stop)
            # After the storm, with Redis still down, a repeat is still answered properly.
            async with many_connections(2) as client:
                again = await client.post(
                    f"{server.url}/api/coupons/claim",
                    json={"userId": ids[0], "couponCode": "STOP"},
                    headers={"Authorization": f"Bearer {token_for(ids[0])}"})
    counts = outcome(responses)
    assert counts[(200, "ISSUED")] == 100, counts
    assert sum(counts.values()) == 1000 and set(counts) <= {
        (200, "ISSUED"), (409, "COUPON_SOLD_OUT"), (409, "COUPON_ALREADY_CLAIMED")}, counts
    assert again.status_code == 409
    assert sorted(await holders(clean_db, "STOP")) == winners(responses)
    await audit_clean(clean_db)
