from __future__ import annotations

import asyncio

import pytest

from tests.backends import BEFORE_THE_DATABASE
from tests.factories import assert_error, make_admin, make_user


async def test_recharge_adds_and_history_lists_newest_first(shop, client):
    user = await make_user(shop)
    first = await client.post("/api/balance/recharge", headers=user.headers,
                              json={"userId": user.id, "amount": 10_000})
    assert first.status_code == 200 and first.json() == {"userId": user.id, "newBalance": 10_000}
    second = await client.post("/api/balance/recharge", headers=user.headers,
                               json={"userId": user.id, "amount": 2_500})
    assert second.json()["newBalance"] == 12_500
    balance = await client.get(f"/api/balance/{user.id}", headers=user.headers)
    assert balance.json() == {"userId": user.id, "balance": 12_500}
    history = await client.get(f"/api/balance/{user.id}/history", headers=user.headers)
    assert history.headers["X-Total-Count"] == "2"
    entries = history.json()
    assert [(e["type"], e["amount"], e["balanceAfter"], e["orderId"]) for e in entries] == [
        ("RECHARGE", 2_500, 12_500, None), ("RECHARGE", 10_000, 10_000, None)]
    assert all(e["createdAt"].endswith("Z") for e in entries)


async def test_history_pages(shop, client):
    user = await make_user(shop)
    for amount in range(1, 6):
        await client.post("/api/balance/recharge", headers=user.headers,
                          json={"userId": user.id, "amount": amount})
    page2 = await client.get(f"/api/balance/{user.id}/history?page=2&size=2",
                             headers=user.headers)
    assert [e["amount"] for e in page2.json()] == [3, 2]
    assert page2.headers["X-Total-Count"] == "5"
    beyond = await client.get(f"/api/balance/{user.id}/history?page=9&size=2",
                              headers=user.headers)
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "5"
    for query in ("page=0", "size=0", "size=101", "page=x", "size=-1"):
        assert_error(await client.get(f"/api/balance/{user.id}/history?{query}",
                                      headers=user.headers), 400, "INVALID_REQUEST")


async def test_balance_may_reach_but_not_pass_the_cap(shop, client):
    user = await make_user(shop, balance=95_000_000)
    over = await client.post("/api/balance/recharge", headers=user.headers,
                             json={"userId": user.id, "amount": 5_000_001})
    assert_error(over, 400, "BALANCE_LIMIT_EXCEEDED")
    exact = await client.post("/api/balance/recharge", headers=user.headers,
                              json={"userId": user.id, "amount": 5_000_000})
    assert exact.json()["newBalance"] == 100_000_000
    assert_error(await client.post("/api/balance/recharge", headers=user.headers,
                                   json={"userId": user.id, "amount": 1}),
                 400, "BALANCE_LIMIT_EXCEEDED")
    history = await client.get(f"/api/balance/{user.id}/history", headers=user.headers)
    assert history.headers["X-Total-Count"] == "2"  # the refused ones left no entry


@BEFORE_THE_DATABASE
@pytest.mark.parametrize("body, field", [
    ({"amount": 100}, "userId"),
    ({"userId": None, "amount": 100}, "userId"),
    ({"userId": "1", "amount": 100}, "userId"),
    ({"userId": 0, "amount": 100}, "userId"),
    ({"userId": 2**64, "amount": 100}, "userId"),
    ({"userId": 1}, "amount"),
    ({"userId": 1, "amount": 0}, "amount"),
    ({"userId": 1, "amount": -5}, "amount"),
    ({"userId": 1, "amount": 10_000_001}, "amount"),
    ({"userId": 1, "amount": 100.5}, "amount"),
    ({"userId": 1, "amount": "100"}, "amount"),
    ({"userId": 1, "amount": True}, "amount"),
    ({"userId": 1, "amount": 10**30}, "amount"),
    ({"userId": 1, "amount": [100]}, "amount"),
])
async def test_invalid_recharge_is_400_naming_the_field(shop, client, body, field):
    user = await make_user(shop, balance=1_000)
    body = {**body, "userId": user.id} if body.get("userId") == 1 else body
    error = assert_error(await client.post("/api/balance/recharge", headers=user.headers,
                                           json=body), 400, "INVALID_REQUEST")
    assert field in error["message"]
    balance = await client.get(f"/api/balance/{user.id}", headers=user.headers)
    assert balance.json()["balance"] == 1_000


@pytest.mark.parametrize("raw", [b"{", b"", b"null", b"[]", b'"text"', b"{'a': 1}",
                                 b'{"userId": 1, "amount": 1e400}', b"\xff\xfe"])
async def test_malformed_body_is_400(shop, client, raw):
    user = await make_user(shop)
    response = await client.post("/api/balance/recharge", content=raw,
                                 headers={**user.headers, "Content-Type": "application/json"})
    assert_error(response, 400, "INVALID_REQUEST")


async def test_another_users_balance_is_403_and_admin_may_see_it(shop, client):
    alice, bob, admin = await make_user(shop), await make_user(shop), await make_admin(shop)
    assert_error(await client.get(f"/api/balance/{bob.id}", headers=alice.headers),
                 403, "FORBIDDEN")
    assert_error(await client.get(f"/api/balance/{bob.id}/history", headers=alice.headers),
                 403, "FORBIDDEN")
    assert_error(await client.post("/api/balance/recharge", headers=alice.headers,
                                   json={"userId": bob.id, "amount": 5}), 403, "FORBIDDEN")
    assert (await client.get(f"/api/balance/{bob.id}", headers=admin.headers)).status_code == 200
    topped = await client.post("/api/balance/recharge", headers=admin.headers,
                               json={"userId": bob.id, "amount": 7})
    assert topped.json() == {"userId": bob.id, "newBalance": 7}


async def test_unknown_user_is_404_for_admin(shop, client):
    admin = await make_admin(shop)
    assert_error(await client.get("/api/balance/987654", headers=admin.headers),
                 404, "USER_NOT_FOUND")
    assert_error(await client.post("/api/balance/recharge", headers=admin.headers,
                                   json={"userId": 987654, "amount": 5}), 404, "USER_NOT_FOUND")
    assert_error(await client.get("/api/balance/987654/history", headers=admin.headers),
                 404, "USER_NOT_FOUND")


async def test_no_token_is_401(shop, client):
    assert_error(await client.get("/api/balance/1"), 401, "UNAUTHORIZED")
    assert_error(await client.post("/api/balance/recharge", json={"userId": 1, "amount": 1}),
                 401, "UNAUTHORIZED")


async def test_path_ids_out_of_range_or_not_digits_are_400(shop, client):
    user = await make_user(shop)
    for path in (f"/api/balance/{2**64}", "/api/balance/0", "/api/balance/abc",
                 "/api/balance/1.5", f"/api/balance/{2**53}",
                 f"/api/balance/{10**40}/history"):
        assert_error(await client.get(path, headers=user.headers), 400, "INVALID_REQUEST")


class TestIdempotency:
    async def test_repeat_replays_and_charges_once(self, shop, client):
        user = await make_user(shop)
        headers = {**user.headers, "Idempotency-Key": "top-up-1"}
        body = {"userId": user.id, "amount": 3_000}
        first = await client.post("/api/balance/recharge", headers=headers, json=body)
        again = await client.post("/api/balance/recharge", headers=headers, json=body)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json() == {"userId": user.id, "newBalance": 3_000}
        other = await client.post("/api/balance/recharge",
                                  headers={**user.headers, "Idempotency-Key": "top-up-2"},
                                  json=body)
        assert other.json()["newBalance"] == 6_000

    async def test_same_key_other_body_is_422(self, shop, client):
        user = await make_user(shop)
        headers = {**user.headers, "Idempotency-Key": "k"}
        await client.post("/api/balance/recharge", headers=headers,
                          json={"userId": user.id, "amount": 1})
        reused = await client.post("/api/balance/recharge", headers=headers,
                                   json={"userId": user.id, "amount": 2})
        assert_error(reused, 422, "IDEMPOTENCY_KEY_REUSED")

    async def test_keys_belong_to_one_user(self, shop, client):
        alice, bob = await make_user(shop), await make_user(shop)
        for user in (alice, bob):
            response = await client.post(
                "/api/balance/recharge", headers={**user.headers, "Idempotency-Key": "same"},
                json={"userId": user.id, "amount": 10})
            assert response.json() == {"userId": user.id, "newBalance": 10}

    async def test_a_refused_request_replays_its_error(self, shop, client):
        user = await make_user(shop, balance=99_999_999)
        headers = {**user.headers, "Idempotency-Key": "too-much"}
        body = {"userId": user.id, "amount": 2}
        first = await client.post("/api/balance/recharge", headers=headers, json=body)
        again = await client.post("/api/balance/recharge", headers=headers, json=body)
        assert_error(first, 400, "BALANCE_LIMIT_EXCEEDED")
        assert again.status_code == 400 and again.json() == first.json()

    @pytest.mark.parametrize("key", ["", "x" * 129, "naïve", "tab\there"])
    async def test_bad_key_is_400(self, shop, client, key):
        user = await make_user(shop)
        response = await client.post(
            "/api/balance/recharge", headers={**user.headers, "Idempotency-Key": key.encode()},
            json={"userId": user.id, "amount": 1})
        assert_error(response, 400, "INVALID_REQUEST")

    async def test_concurrent_repeats_charge_once(self, shop, client):
        user = await make_user(shop)
        headers = {**user.headers, "Idempotency-Key": "burst"}
        responses = await asyncio.gather(*[
            client.post("/api/balance/recharge", headers=headers,
                        json={"userId": user.id, "amount": 500}) for _ in range(20)])
        assert {r.status_code for r in responses} == {200}
        assert {r.text for r in responses} == {responses[0].text}
        assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
                ).json()["balance"] == 500
