"""The gateway client against `ecommerce dev-pg`, a real process over HTTP: the checkout's
redirects, confirm, lookups, cancel with an Idempotency-Key, the test cards' outcomes (a
decline, an answer later than the client waits, a 5xx) and the secret key."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ecommerce.payments.gateway import (
    Gateway,
    GatewayRefused,
    GatewayUnreachable,
)
from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY
from tests.payments.checkout import DECLINE, FAIL, LATE, authorise, dev_pg
from tests.scratch import free_port


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with dev_pg("--timeout-delay", "2") as url:
        yield url


@pytest.fixture
async def gateway(sandbox: str):
    client = Gateway(sandbox, DEFAULT_SECRET_KEY, timeout=0.5)
    yield client
    await client.close()


async def test_an_approved_payment_is_charged_once_and_read_back_both_ways(sandbox, gateway):
    key, order_id = await authorise(sandbox, 12_000)
    before = await gateway.by_order_id(order_id)
    assert before is not None and before.status == "IN_PROGRESS" and not before.approved
    paid = await gateway.confirm(key, order_id, 12_000)
    assert (paid.payment_key, paid.order_id, paid.status) == (key, order_id, "DONE")
    assert paid.approved and paid.total_amount == paid.balance_amount == 12_000
    assert paid.approved_at is not None
    assert await gateway.by_payment_key(key) == paid
    assert await gateway.by_order_id(order_id) == paid
    with pytest.raises(GatewayRefused) as again:
        await gateway.confirm(key, order_id, 12_000)
    assert (again.value.status, again.value.code) == (400, "ALREADY_PROCESSED_PAYMENT")


async def test_two_confirms_at_once_charge_once(sandbox, gateway):
    key, order_id = await authorise(sandbox, 5_000)
    outcomes = await asyncio.gather(*[gateway.confirm(key, order_id, 5_000) for _ in range(5)],
                                    return_exceptions=True)
    approved = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o.code for o in outcomes if isinstance(o, GatewayRefused)]
    assert len(approved) == 1 and refused == ["ALREADY_PROCESSED_PAYMENT"] * 4


async def test_a_declined_card_is_refused_with_the_gateways_code(sandbox, gateway):
    key, order_id = await authorise(sandbox, 7_000, DECLINE)
    with pytest.raises(GatewayRefused) as declined:
        await gateway.confirm(key, order_id, 7_000)
    assert (declined.value.status, declined.value.code) == (403, "REJECT_CARD_PAYMENT")
    assert declined.value.message  # the gateway's own words, for the customer
    after = await gateway.by_order_id(order_id)
    assert after is not None and not after.approved


async def test_an_answer_later_than_the_timeout_is_unknown_and_the_lookup_settles_it(
        sandbox, gateway):
    key, order_id = await authorise(sandbox, 9_000, LATE)
    with pytest.raises(GatewayUnreachable):
        await gateway.confirm(key, order_id, 9_000)  # charged, but we never heard
    settled = await gateway.by_order_id(order_id)
    assert settled is not None and settled.approved and settled.total_amount == 9_000


async def test_a_5xx_is_unknown_and_the_lookup_shows_nothing_charged(sandbox, gateway):
    key, order_id = await authorise(sandbox, 4_000, FAIL)
    with pytest.raises(GatewayUnreachable):
        await gateway.confirm(key, order_id, 4_000)
    after = await gateway.by_order_id(order_id)
    assert after is not None and not after.approved


async def test_a_confirm_for_another_amount_is_refused(sandbox, gateway):
    key, order_id = await authorise(sandbox, 3_000)
    with pytest.raises(GatewayRefused) as refused:
        await gateway.confirm(key, order_id, 2_000)
    assert refused.value.code == "INVALID_REQUEST"
    assert not (await gateway.by_payment_key(key)).approved


async def test_a_cancel_refunds_once_per_idempotency_key(sandbox, gateway):
    key, order_id = await authorise(sandbox, 10_000)
    await gateway.confirm(key, order_id, 10_000)
    refund = str(uuid.uuid4())
    first, repeat = await asyncio.gather(gateway.cancel(key, 4_000, "고객 요청", refund),
                                         gateway.cancel(key, 4_000, "고객 요청", refund))
    assert first == repeat and first.status == "PARTIAL_CANCELED"
    assert first.balance_amount == 6_000 and first.refunded == 4_000
    rest = await gateway.cancel(key, 6_000, "고객 요청", str(uuid.uuid4()))
    assert rest.status == "CANCELED" and rest.refunded == 10_000 and rest.approved
    with pytest.raises(GatewayRefused) as again:
        await gateway.cancel(key, 1, "고객 요청", str(uuid.uuid4()))
    assert again.value.code == "ALREADY_CANCELED_PAYMENT"


async def test_a_cancel_beyond_what_is_left_or_of_an_unpaid_payment_is_refused(
        sandbox, gateway):
    key, order_id = await authorise(sandbox, 2_000)
    with pytest.raises(GatewayRefused) as unpaid:
        await gateway.cancel(key, 2_000, "고객 요청", str(uuid.uuid4()))
    assert unpaid.value.code == "NOT_CANCELABLE_PAYMENT"
    await gateway.confirm(key, order_id, 2_000)
    with pytest.raises(GatewayRefused) as beyond:
        await gateway.cancel(key, 2_001, "고객 요청", str(uuid.uuid4()))
    assert beyond.value.code == "NOT_CANCELABLE_AMOUNT"


async def test_unknown_payments_are_none_and_a_wrong_secret_key_is_refused(sandbox, gateway):
    assert await gateway.by_order_id("no-such-order") is None
    assert await gateway.by_payment_key("tsb_nothing") is None
    intruder = Gateway(sandbox, "test_sk_wrong", timeout=2)
    try:
        with pytest.raises(GatewayRefused) as refused:
            await intruder.by_order_id("no-such-order")
        assert (refused.value.status, refused.value.code) == (401, "UNAUTHORIZED_KEY")
    finally:
        await intruder.close()


async def test_a_gateway_that_is_down_is_unreachable_not_refused():
    client = Gateway(f"http://127.0.0.1:{free_port()}", DEFAULT_SECRET_KEY, timeout=1)
    try:
        with pytest.raises(GatewayUnreachable):
            await client.by_order_id("anything")
    finally:
        await client.close()


async def test_the_checkout_sends_a_customer_who_gives_up_to_the_fail_url(sandbox):
    fields = {"clientKey": DEFAULT_CLIENT_KEY, "orderId": "order-x", "amount": "1000",
              "successUrl": "http://shop.test/ok", "failUrl": "http://shop.test/fail",
              "action": "cancel"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{sandbox}/checkout", data=fields)
        wrong_key = await client.get(f"{sandbox}/checkout", params={
            **fields, "clientKey": "test_ck_wrong"})
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert answer.status_code == 303 and query["code"] == ["PAY_PROCESS_CANCELED"]
    assert query["orderId"] == ["order-x"] and query["message"][0]
    assert wrong_key.status_code == 400


async def test_the_added_latency_delays_every_api_call():
    with dev_pg("--latency", "0.2") as url:
        client = Gateway(url, DEFAULT_SECRET_KEY, timeout=5)
        try:
            started = time.monotonic()
            await client.by_order_id("none")
            assert time.monotonic() - started >= 0.2
        finally:
            await client.close()
