from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from ecommerce.audit import audit_database
from ecommerce.coupons.models import coupon_events
from tests.backends import BEFORE_THE_DATABASE, REDIS_URL, require
from tests.conftest import wipe_redis
from tests.factories import assert_error, make_admin, make_coupon, make_product, make_user

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def coupon_body(**overrides):
    body = {"code": "SALE-10", "name": "10% off", "discountType": "PERCENT",
            "discountValue": 10, "maxDiscountAmount": 5_000, "minOrderAmount": 10_000,
            "totalQuantity": 3, "issueStartsAt": "2026-12-01T00:00:00Z",
            "issueEndsAt": "2026-12-02T00:00:00Z", "validDays": 7}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def claim(client, user, code, user_id=None):
    return await client.post("/api/coupons/claim", headers=user.headers,
                             json={"userId": user_id or user.id, "couponCode": code})


async def test_admin_creates_and_everyone_signed_in_sees_counts(shop, client):
    admin, customer = await make_admin(shop), await make_user(shop)
    created = await client.post("/api/admin/coupons", headers=admin.headers, json=coupon_body())
    assert created.status_code == 201, created.text
    expected = {"code": "SALE-10", "name": "10% off", "discountType": "PERCENT",
                "discountValue": 10, "maxDiscountAmount": 5_000, "minOrderAmount": 10_000,
                "totalQuantity": 3, "issuedQuantity": 0, "remainingQuantity": 3,
                "issueStartsAt": "2026-12-01T00:00:00Z",
                "issueEndsAt": "2026-12-02T00:00:00Z", "expiresAt": None, "validDays": 7}
    assert created.json() == expected
    assert (await client.get("/api/coupons/SALE-10", headers=customer.headers)).json() == expected
    assert_error(await client.get("/api/coupons/SALE-10"), 401, "UNAUTHORIZED")
    assert_error(await client.get("/api/coupons/NOPE", headers=customer.headers),
                 404, "COUPON_NOT_FOUND")
    listed = await client.get("/api/admin/coupons", headers=admin.headers)
    assert [c["code"] for c in listed.json()] == ["SALE-10"]
    assert_error(await client.get("/api/admin/coupons", headers=customer.headers),
                 403, "FORBIDDEN")
    assert_error(await client.post("/api/admin/coupons", headers=customer.headers,
                                   json=coupon_body(code="MINE")), 403, "FORBIDDEN")
    assert_error(await client.post("/api/admin/coupons", headers=admin.headers,
                                   json=coupon_body()), 409, "COUPON_CODE_TAKEN")


@BEFORE_THE_DATABASE
@pytest.mark.parametrize("overrides, field", [
    ({"discountValue": 101}, "discountValue"),
    ({"discountValue": 0}, "discountValue"),
    ({"totalQuantity": 0}, "totalQuantity"),
    ({"totalQuantity": 10_000_001}, "totalQuantity"),
    ({"code": "bad code"}, "code"),
    ({"code": "lower"}, "code"),
    ({"code": "AB"}, "code"),
    ({"issueEndsAt": "2026-11-30T00:00:00Z"}, "issueEndsAt"),
    ({"validDays": None}, "expiresAt or validDays"),
    ({"expiresAt": "2027-01-01T00:00:00Z"}, "expiresAt or validDays"),
    ({"discountType": "BOGO"}, "discountType"),
    ({"discountType": "FIXED", "discountValue": 500}, "maxDiscountAmount"),
    ({"issueStartsAt": "2026-12-01T00:00:00"}, "issueStartsAt"),
    ({"issueStartsAt": "yesterday"}, "issueStartsAt"),
    ({"minOrderAmount": -1}, "minOrderAmount"),
    ({"validDays": 0}, "validDays"),
])
async def test_invalid_coupon_definitions_are_400(shop, client, overrides, field):
    admin = await make_admin(shop)
    error = assert_error(await client.post("/api/admin/coupons", headers=admin.headers,
                                           json=coupon_body(**overrides)),
                         400, "INVALID_REQUEST")
    assert field in error["message"], error["message"]
    assert (await client.get("/api/admin/coupons", headers=admin.headers)).json() == []


async def test_claims_are_first_come_first_served_once_per_user(shop, client):
    shop.clock.freeze(T0 + timedelta(hours=1))
    await make_coupon(shop, code="FLASH", quantity=2, starts_at=T0)
    alice, bob, carol = [await make_user(shop) for _ in range(3)]
    first = await claim(client, alice, "flash")  # codes are case-insensitive when claimed
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["userId"], body["couponCode"], body["status"]) == (alice.id, "FLASH", "ISSUED")
    assert body["expiresAt"] == "2026-12-08T01:00:00Z"  # validDays from the moment of issue
    assert_error(await claim(client, alice, "FLASH"), 409, "COUPON_ALREADY_CLAIMED")
    assert (await claim(client, bob, "FLASH")).status_code == 200
    assert_error(await claim(client, carol, "FLASH"), 409, "COUPON_SOLD_OUT")
    view = (await client.get("/api/coupons/FLASH", headers=carol.headers)).json()
    assert (view["issuedQuantity"], view["remainingQuantity"]) == (2, 0)
    assert_error(await claim(client, carol, "NOSUCH"), 404, "COUPON_NOT_FOUND")
    async with shop.db.uow(write=False) as uow:
        kinds = (await uow.conn.execute(select(coupon_events.c.kind))).scalars().all()
    assert sorted(kinds) == ["ISSUED", "ISSUED"]
    assert not any((await audit_database(shop.db)).values())


async def test_claim_outside_the_issue_window_is_409_not_active(shop, client):
    shop.clock.freeze(T0 - timedelta(seconds=1))
    await make_coupon(shop, code="WINDOW", starts_at=T0, ends_at=T0 + timedelta(hours=2))
    user = await make_user(shop)
    assert_error(await claim(client, user, "WINDOW"), 409, "COUPON_NOT_ACTIVE")
    shop.clock.freeze(T0 + timedelta(hours=2))
    assert_error(await claim(client, user, "WINDOW"), 409, "COUPON_NOT_ACTIVE")
    shop.clock.freeze(T0 + timedelta(hours=1, minutes=59))
    assert (await claim(client, user, "WINDOW")).status_code == 200


async def test_claim_after_the_coupon_expired_is_409_even_inside_the_issue_window(shop,
                                                                                  client):
    shop.clock.freeze(T0)
    await make_coupon(shop, code="LATE", quantity=5, starts_at=T0,
                      ends_at=T0 + timedelta(days=10), expires_at=T0 + timedelta(days=2))
    user, other = await make_user(shop), await make_user(shop)
    assert (await claim(client, user, "LATE")).status_code == 200
    shop.clock.freeze(T0 + timedelta(days=2))
    assert_error(await claim(client, other, "LATE"), 409, "COUPON_NOT_ACTIVE")
    admin = await make_admin(shop)
    view = (await client.get("/api/coupons/LATE", headers=admin.headers)).json()
    assert view["issuedQuantity"] == 1  # the refused claim used up nothing
    assert not any((await audit_database(shop.db)).values())


async def test_a_coupon_cannot_be_created_already_expired(shop, client):
    shop.clock.freeze(T0)
    admin = await make_admin(shop)
    for expires in ("2020-01-01T00:00:00Z", "2026-12-01T00:00:00Z"):
        refused = await client.post("/api/admin/coupons", headers=admin.headers, json=coupon_body(
            validDays=None, expiresAt=expires, issueStartsAt=None, issueEndsAt=None))
        body = assert_error(refused, 400, "INVALID_REQUEST")
        assert "expiresAt" in body["message"]
    assert (await client.get("/api/admin/coupons", headers=admin.headers)).json() == []


async def test_customers_browse_the_coupons_they_can_claim_now(shop, client):
    shop.clock.freeze(T0)
    await make_coupon(shop, code="OPEN", quantity=2)
    await make_coupon(shop, code="SOON", starts_at=T0 + timedelta(hours=1))
    await make_coupon(shop, code="ENDED", starts_at=T0 - timedelta(days=2),
                      ends_at=T0 - timedelta(days=1))
    await make_coupon(shop, code="EXPIRED", starts_at=T0 - timedelta(days=2),
                      expires_at=T0 + timedelta(seconds=1))
    await make_coupon(shop, code="GONE", quantity=1)
    user, other = await make_user(shop), await make_user(shop)
    assert (await claim(client, other, "GONE")).status_code == 200
    assert (await claim(client, other, "OPEN")).status_code == 200
    shop.clock.freeze(T0 + timedelta(seconds=1))
    listed = await client.get("/api/coupons?available=true", headers=user.headers)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "1"
    [coupon] = listed.json()
    assert (coupon["code"], coupon["remainingQuantity"]) == ("OPEN", 1)
    assert [c["code"] for c in (await client.get("/api/coupons",
                                                 headers=user.headers)).json()] == ["OPEN"]
    everything = await client.get("/api/coupons?available=false", headers=user.headers)
    assert sorted(c["code"] for c in everything.json()) == ["GONE", "OPEN", "SOON"]
    assert_error(await client.get("/api/coupons"), 401, "UNAUTHORIZED")
    assert_error(await client.get("/api/coupons?available=maybe", headers=user.headers),
                 400, "INVALID_REQUEST")


async def _ghost_claim_then_a_real_one(shop, client) -> None:
    await make_coupon(shop, code="ONE", quantity=1)
    admin = await make_admin(shop)
    ghost = admin.id + 1_000
    token = shop.ctx.accounts.tokens.issue(ghost, "CUSTOMER", shop.clock.now())
    refused = await client.post("/api/coupons/claim", json={"userId": ghost, "couponCode": "ONE"},
                                headers={"Authorization": f"Bearer {token}"})
    assert_error(refused, 404, "USER_NOT_FOUND")
    real = await make_user(shop)
    assert (await claim(client, real, "ONE")).status_code == 200  # the seat was given back
    assert not any((await audit_database(shop.db)).values())


async def test_a_claim_for_a_user_who_does_not_exist_is_404(shop, client):
    await _ghost_claim_then_a_real_one(shop, client)


async def test_claim_for_another_user_is_403_and_admin_may(shop, client):
    await make_coupon(shop, code="GIFT")
    alice, bob, admin = await make_user(shop), await make_user(shop), await make_admin(shop)
    assert_error(await claim(client, alice, "GIFT", user_id=bob.id), 403, "FORBIDDEN")
    assert (await claim(client, admin, "GIFT", user_id=bob.id)).json()["userId"] == bob.id
    assert_error(await client.post("/api/coupons/claim",
                                   json={"userId": alice.id, "couponCode": "GIFT"}),
                 401, "UNAUTHORIZED")


@pytest.mark.parametrize("body", [{}, {"userId": 1}, {"couponCode": "X"},
                                  {"userId": "1", "couponCode": "X"},
                                  {"userId": 1, "couponCode": ""},
                                  {"userId": 1, "couponCode": 5}])
async def test_invalid_claim_is_400(shop, client, body):
    user = await make_user(shop)
    assert_error(await client.post("/api/coupons/claim", headers=user.headers, json=body),
                 400, "INVALID_REQUEST")


async def test_held_coupons_show_available_used_and_expired(shop, client):
    shop.clock.freeze(T0)
    await make_coupon(shop, code="SHORT", valid_days=1)
    await make_coupon(shop, code="FIXEDEND", expires_at=T0 + timedelta(days=30))
    user = await make_user(shop)
    await claim(client, user, "SHORT")
    await claim(client, user, "FIXEDEND")
    held = await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)
    assert held.headers["X-Total-Count"] == "2"
    assert [(c["couponCode"], c["status"], c["expiresAt"]) for c in held.json()] == [
        ("FIXEDEND", "AVAILABLE", "2026-12-31T00:00:00Z"),
        ("SHORT", "AVAILABLE", "2026-12-02T00:00:00Z")]
    shop.clock.freeze(T0 + timedelta(days=1))
    expired = await client.get(f"/api/users/{user.id}/coupons?status=EXPIRED",
                               headers=user.headers)
    assert [c["couponCode"] for c in expired.json()] == ["SHORT"]
    available = await client.get(f"/api/users/{user.id}/coupons?status=AVAILABLE",
                                 headers=user.headers)
    assert [c["couponCode"] for c in available.json()] == ["FIXEDEND"]
    assert (await client.get(f"/api/users/{user.id}/coupons?status=USED",
                             headers=user.headers)).json() == []
    assert_error(await client.get(f"/api/users/{user.id}/coupons?status=GONE",
                                  headers=user.headers), 400, "INVALID_REQUEST")
    other = await make_user(shop)
    assert_error(await client.get(f"/api/users/{user.id}/coupons", headers=other.headers),
                 403, "FORBIDDEN")


async def test_one_user_fifty_parallel_claims_get_exactly_one(shop, client):
    await make_coupon(shop, code="RUSH", quantity=10)
    user = await make_user(shop)
    responses = await asyncio.gather(*[claim(client, user, "RUSH") for _ in range(50)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 49
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "COUPON_ALREADY_CLAIMED"}
    view = (await client.get("/api/coupons/RUSH", headers=user.headers)).json()
    assert view["issuedQuantity"] == 1


class TestClaimRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limit_claim": "2/minute"}

    async def test_third_claim_in_the_window_is_429(self, shop, client):
        user = await make_user(shop)
        for code in ("A-1", "A-2", "A-3"):
            await make_coupon(shop, code=code)
        assert (await claim(client, user, "A-1")).status_code == 200
        assert (await claim(client, user, "A-2")).status_code == 200
        limited = await claim(client, user, "A-3")
        assert_error(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["Retry-After"]) >= 1
        other = await make_user(shop)  # the limit is per user, not per address
        assert (await claim(client, other, "A-3")).status_code == 200


class TestRedisGate:
    @pytest.fixture
    def settings_overrides(self):
        return {"redis_url": require("redis", REDIS_URL)}

    async def test_sold_out_and_duplicates_answered_and_rebuilt_after_a_flush(self, shop,
                                                                               client):
        await make_coupon(shop, code="GATED", quantity=3)
        users = [await make_user(shop) for _ in range(6)]
        assert [(await claim(client, u, "GATED")).status_code for u in users[:2]] == [200, 200]
        await wipe_redis(shop.settings.redis_url, shop.settings.redis_prefix)  # lose it all
        assert_error(await claim(client, users[0], "GATED"), 409, "COUPON_ALREADY_CLAIMED")
        assert (await claim(client, users[2], "GATED")).status_code == 200
        for user in users[3:]:
            assert_error(await claim(client, user, "GATED"), 409, "COUPON_SOLD_OUT")
        holders = await shop.ctx.redis.smembers(
            f"{shop.settings.redis_prefix}:coupon:{{GATED}}:holders")
        assert sorted(int(h) for h in holders) == sorted(u.id for u in users[:3])
        assert not any((await audit_database(shop.db)).values())

    async def test_an_expired_coupon_is_refused_by_the_gate_too(self, shop, client):
        shop.clock.freeze(T0)
        await make_coupon(shop, code="GONE", quantity=5, starts_at=T0,
                          ends_at=T0 + timedelta(days=10), expires_at=T0 + timedelta(days=1))
        early, late = await make_user(shop), await make_user(shop)
        assert (await claim(client, early, "GONE")).status_code == 200
        shop.clock.freeze(T0 + timedelta(days=1, seconds=1))
        assert_error(await claim(client, late, "GONE"), 409, "COUPON_NOT_ACTIVE")
        holders = await shop.ctx.redis.smembers(
            f"{shop.settings.redis_prefix}:coupon:{{GONE}}:holders")
        assert [int(h) for h in holders] == [early.id]

    async def test_every_gate_key_expires(self, shop, client):
        await make_coupon(shop, code="TTL", quantity=5)  # no holders yet when it loads
        assert (await claim(client, await make_user(shop), "TTL")).status_code == 200
        prefix = f"{shop.settings.redis_prefix}:coupon:{{TTL}}"
        for key in (f"{prefix}:meta", f"{prefix}:holders"):
            assert await shop.ctx.redis.pttl(key) > 0, key

    async def test_a_claim_for_a_user_who_does_not_exist_is_404_and_keeps_no_seat(
            self, shop, client):
        await _ghost_claim_then_a_real_one(shop, client)

    async def test_unreachable_redis_falls_back_to_the_database(self, shop, client):
        from redis.asyncio import Redis

        from ecommerce.coupons.gate import RedisGate

        await make_coupon(shop, code="NOREDIS", quantity=1)
        dead = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.2)
        shop.ctx.coupons.gate = RedisGate(dead, shop.settings.redis_prefix)
        try:
            a, b = await make_user(shop), await make_user(shop)
            assert (await claim(client, a, "NOREDIS")).status_code == 200
            assert_error(await claim(client, b, "NOREDIS"), 409, "COUPON_SOLD_OUT")
        finally:
            await dead.aclose()


class TestRedisGateSoldOutMemory:
    """Once Redis says a coupon is sold out, each process answers so for a second without
    asking Redis again (issued coupons never come back), then asks Redis again."""

    async def test_sold_out_is_remembered_briefly(self, shop, redis_url):
        from redis.asyncio import Redis

        from ecommerce.coupons import usecases
        from ecommerce.coupons.gate import PASS, SOLD_OUT, RedisGate

        await make_coupon(shop, code="MEMO", quantity=1)
        client = Redis.from_url(redis_url, decode_responses=True)
        gate = RedisGate(client, shop.settings.redis_prefix)
        gate.SOLD_OUT_MEMORY_SECONDS = 0.3
        load = usecases.state_loader(shop.db)
        try:
            now = shop.clock.now()
            assert await gate.enter("MEMO", 1, now, load) == PASS
            assert await gate.enter("MEMO", 2, now, load) == SOLD_OUT
            # Free the place in Redis behind the gate's back: the memory still answers.
            holders = f"{shop.settings.redis_prefix}:coupon:{{MEMO}}:holders"
            await client.srem(holders, 1)
            assert await gate.enter("MEMO", 3, now, load) == SOLD_OUT
            await asyncio.sleep(0.35)
            assert await gate.enter("MEMO", 3, now, load) == PASS  # Redis is asked again
        finally:
            await client.aclose()


class TestRedisKeysExpire:
    """Every key the shop writes to Redis expires, but those that must not: the catalog's
    two generation counters (cached lists and pages name them; losing one could bring a
    stale page back) and the event stream (capped at about a million entries)."""

    @pytest.fixture
    def settings_overrides(self):
        return {"redis_url": require("redis", REDIS_URL), "top_sellers_cache_seconds": 30,
                "rate_limit_claim": "5/second", "rate_limit_login": "10/minute",
                "rate_limit_login_account": "30/hour"}

    async def test_after_a_day_of_traffic_every_key_has_a_lifetime(self, shop, client):
        from ecommerce.catalog.listing import _GENERATION, _ROWS

        prefix = shop.settings.redis_prefix
        await make_coupon(shop, code="KEYS", quantity=2)
        users = [await make_user(shop, password="password-123") for _ in range(3)]
        for user in users:  # two issued, one sold out; the claim limit counts each
            await claim(client, user, "KEYS")
        for password in ("password-123", "wrong-password"):  # login limits, both kinds
            await client.post("/api/auth/login",
                              json={"username": users[0].username, "password": password})
        assert (await client.get("/api/products?sort=price_asc")).status_code == 200
        assert (await client.get("/api/products/top")).status_code == 200
        last_one = await make_product(shop, stock=1)  # sold out below: the generation moves
        buyer = await make_user(shop, balance=10_000)
        sold = await client.post("/api/orders", headers=buyer.headers, json={
            "userId": buyer.id, "items": [{"productId": last_one, "quantity": 1}]})
        assert sold.status_code == 201, sold.text
        keys = [key async for key in shop.ctx.redis.scan_iter(match=f"{prefix}:*")]
        families = {key.removeprefix(f"{prefix}:").split(":")[0] for key in keys}
        assert {"coupon", "rl", "catalog", "ranking"} <= families, keys  # each kind written
        lasting = {key for key in keys if await shop.ctx.redis.pttl(key) < 0}
        assert lasting <= {f"{prefix}:{_GENERATION}", f"{prefix}:{_ROWS}",
                           shop.settings.stream_key}, lasting
