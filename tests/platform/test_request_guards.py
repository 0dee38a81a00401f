"""What every path (the lean ones included) does with bodies that are too large, not JSON,
or nested too deeply: a clear 4xx in the error format, and nothing changed."""

from __future__ import annotations

import pytest

from tests.backends import BEFORE_THE_DATABASE
from tests.factories import assert_error, make_product, make_user

pytestmark = BEFORE_THE_DATABASE

LEAN_AND_ROUTE = ["/api/orders", "/api/coupons/claim", "/api/balance/recharge"]


async def _balance(client, user) -> int:
    return (await client.get(f"/api/balance/{user.id}", headers=user.headers)).json()["balance"]


async def test_a_padded_order_over_the_limit_is_413_and_not_placed(shop, client):
    user = await make_user(shop, balance=10_000)
    product = await make_product(shop, price=1_000, stock=5)
    padding = "x" * (10 * 1024 * 1024)
    body = {"userId": user.id, "items": [{"productId": product, "quantity": 1}],
            "pad": padding}
    response = await client.post("/api/orders", headers=user.headers, json=body)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await _balance(client, user) == 10_000
    orders = await client.get(f"/api/users/{user.id}/orders", headers=user.headers)
    assert orders.json() == []


@pytest.mark.parametrize("path", [*LEAN_AND_ROUTE, "/api/auth/login", "/api/admin/products"])
async def test_a_large_unauthenticated_body_is_413_before_the_token_is_checked(client, path):
    response = await client.post(path, content=b"{" + b" " * 200_000 + b"}",
                                 headers={"Content-Type": "application/json"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_chunked_body_is_cut_off_at_the_limit(shop, client):
    user = await make_user(shop, balance=10_000)

    async def chunks():
        yield b'{"userId": %d, "amount": 1000, "pad": "' % user.id
        for _ in range(100):
            yield b"y" * 4096
        yield b'"}'

    response = await client.post("/api/balance/recharge", headers={
        **user.headers, "Content-Type": "application/json"}, content=chunks())
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await _balance(client, user) == 10_000


async def test_a_body_just_under_the_limit_is_read(shop, client):
    user = await make_user(shop, balance=0)
    body = b'{"userId": %d, "amount": 1000, "pad": "%s"}' % (user.id, b"z" * 60_000)
    response = await client.post("/api/balance/recharge", content=body, headers={
        **user.headers, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml", None])
@pytest.mark.parametrize("path", LEAN_AND_ROUTE)
async def test_a_body_that_is_not_json_is_415_on_every_path(shop, client, path, content_type):
    user = await make_user(shop, balance=10_000)
    product = await make_product(shop, price=1_000, stock=5)
    body = (b'{"userId": %d, "items": [{"productId": %d, "quantity": 1}], "amount": 10,'
            b' "couponCode": "X"}' % (user.id, product))
    headers = dict(user.headers)
    if content_type:
        headers["Content-Type"] = content_type
    request = client.build_request("POST", path, content=body, headers=headers)
    assert ("content-type" in request.headers) == (content_type is not None)
    assert_error(await client.send(request), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await _balance(client, user) == 10_000


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8",
                                          "application/merge-patch+json"])
async def test_json_media_types_with_parameters_or_suffixes_are_accepted(shop, client,
                                                                        content_type):
    user = await make_user(shop)
    response = await client.post("/api/balance/recharge", headers={
        **user.headers, "Content-Type": content_type},
        content=b'{"userId": %d, "amount": 500}' % user.id)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/orders", "/api/balance/recharge", "/api/auth/login"])
async def test_deeply_nested_json_is_400_invalid_request(shop, client, path):
    user = await make_user(shop)
    depth = 20_000
    response = await client.post(path, headers={**user.headers,
                                                "Content-Type": "application/json"},
                                 content=b"[" * depth + b"]" * depth)
    assert_error(response, 400, "INVALID_REQUEST")
