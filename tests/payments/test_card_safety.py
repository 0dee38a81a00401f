"""Issue 32: no approved charge is ever lost, nothing is held for free, and what the audit
says is true. Against `ecommerce dev-pg` as a real process, on every database; each test
ends with the audit (the gateway's side included) clean."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ecommerce.audit import audit_database
from ecommerce.payments.models import stray_approvals
from tests.factories import assert_error, make_product, make_user
from tests.payments.checkout import APPROVE, DECLINE, LATE, authorise, dev_pg
from tests.payments.test_card_orders import (
    GRACE,
    LATE_ANSWER,
    SURELY_ENDED,
    TIMEOUT,
    audited,
    card_order,
    events_of,
    state,
)


@pytest.fixture(scope="module")
def sandbox():
    with dev_pg("--timeout-delay", LATE_ANSWER) as url:
        yield url


@pytest.fixture
def settings_overrides(sandbox: str) -> dict[str, Any]:
    from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY

    return {"payment_gateway_url": sandbox, "payment_secret_key": DEFAULT_SECRET_KEY,
            "payment_client_key": DEFAULT_CLIENT_KEY, "payment_timeout_seconds": TIMEOUT,
            "payment_settle_grace_seconds": GRACE, "run_payment_jobs": False,
            "balance_direct_topup": True}


def confirm(client, user, order: dict, key: str):  # noqa: ANN001, ANN201
    return client.post(f"/api/orders/{order['orderId']}/payment/confirm", headers=user.headers,
                       json={"paymentKey": key, "amount": order["payment"]["amount"]})


async def shown(client, user, order: dict) -> tuple[str, str]:  # noqa: ANN001
    body = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    return body["status"], body["payment"]["status"]


async def strays(shop) -> list[tuple[str, int, str]]:  # noqa: ANN001
    async with shop.db.uow(write=False) as uow:
        rows = (await uow.conn.execute(select(stray_approvals).order_by(
            stray_approvals.c.id))).all()
    return [(row.payment_key, row.amount, row.status) for row in rows]


async def past_the_confirms_bound(shop) -> None:  # noqa: ANN001
    """The job's reading of "no approval" counts only once a confirm's call surely ended:
    move the shop's clock past it instead of waiting."""
    shop.clock.advance(SURELY_ENDED)


async def test_a_late_approval_with_a_second_checkout_open_is_paid_not_lost(shop, client,
                                                                           sandbox):
    """B1's reproduction: the customer's card answers after the shop gave up (K1), and a
    second tab opened another checkout for the order (K2, never used). The job reads back
    K1, which the gateway approved: the order is PAID. Before, it read the order id, found
    K2 IN_PROGRESS and failed the order with K1's money charged."""
    shop.clock.freeze(shop.clock.now())
    user = await make_user(shop, balance=2_000)
    pen = await make_product(shop, price=7_500, stock=3)
    order = await card_order(client, user, pen, balance_amount=2_000)
    pg_order_id = order["payment"]["pgOrderId"]
    k1, _ = await authorise(sandbox, 5_500, LATE, order_id=pg_order_id)
    await authorise(sandbox, 5_500, APPROVE, order_id=pg_order_id)  # K2: the second tab
    unknown = await confirm(client, user, order, k1)
    assert (unknown.status_code, unknown.json()["status"]) == (202, "PAYMENT_UNKNOWN")
    await past_the_confirms_bound(shop)
    assert (await shop.ctx.payments.reconcile_once())["settle"] == 1
    assert await shown(client, user, order) == ("PAID", "DONE")
    assert (await shop.ctx.payments.gateway.by_payment_key(k1)).status == "DONE"
    assert await events_of(shop, order["orderId"]) == ["order.completed"]
    await audited(shop)


async def test_a_top_up_answered_late_with_a_second_checkout_credits_the_balance(shop, client,
                                                                                sandbox):
    shop.clock.freeze(shop.clock.now())
    user = await make_user(shop)
    charge = (await client.post("/api/balance/charges", headers=user.headers,
                                json={"userId": user.id, "amount": 30_000})).json()
    pg_order_id = charge["payment"]["pgOrderId"]
    k1, _ = await authorise(sandbox, 30_000, LATE, order_id=pg_order_id)
    await authorise(sandbox, 30_000, APPROVE, order_id=pg_order_id)
    unknown = await client.post(f"/api/balance/charges/{charge['chargeId']}/confirm",
                                headers=user.headers, json={"paymentKey": k1,
                                                            "amount": 30_000})
    assert (unknown.status_code, unknown.json()["status"]) == (202, "PAYMENT_UNKNOWN")
    await past_the_confirms_bound(shop)
    await shop.ctx.payments.reconcile_once()
    balance = (await client.get(f"/api/balance/{user.id}", headers=user.headers)).json()
    assert balance["balance"] == 30_000
    await audited(shop)


async def test_an_approval_under_a_key_the_shop_never_confirmed_is_refunded(shop, client,
                                                                           sandbox):
    """Two checkouts of one order: K2 is confirmed at the gateway by something else; the
    customer then confirms K1, which the gateway refuses (an order id is approved once).
    K2's approval is not the shop's: recorded and refunded; the order fails, every hold
    back."""
    user = await make_user(shop, balance=1_000)
    pen = await make_product(shop, price=4_000, stock=1)
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=1_000)
    pg_order_id = order["payment"]["pgOrderId"]
    k1, _ = await authorise(sandbox, 3_000, APPROVE, order_id=pg_order_id)
    k2, _ = await authorise(sandbox, 3_000, APPROVE, order_id=pg_order_id)
    gateway = shop.ctx.payments.gateway
    await gateway.confirm(k2, pg_order_id, 3_000)  # another system, with the shop's key
    refused = await confirm(client, user, order, k1)
    assert "DUPLICATED_ORDER_ID" in assert_error(refused, 402, "PAYMENT_DECLINED")["message"]
    assert await shown(client, user, order) == ("PAYMENT_FAILED", "FAILED")
    assert await strays(shop) == [(k2, 3_000, "REFUNDED")]
    assert (await gateway.by_payment_key(k2)).status == "CANCELED"
    assert (await gateway.by_payment_key(k1)).status == "IN_PROGRESS"  # never charged
    assert await state(shop, client, user, pen) == before
    await audited(shop)


async def test_a_stray_refund_the_gateway_misses_is_asked_again_by_the_job(shop, client,
                                                                          sandbox):
    from tests.payments.test_card_orders import gateway_down

    user = await make_user(shop)
    pen = await make_product(shop, price=2_000, stock=2)
    order = await card_order(client, user, pen)
    pg_order_id = order["payment"]["pgOrderId"]
    k1, _ = await authorise(sandbox, 2_000, APPROVE, order_id=pg_order_id)
    k2, _ = await authorise(sandbox, 2_000, APPROVE, order_id=pg_order_id)
    working = shop.ctx.payments.gateway
    assert (await confirm(client, user, order, k1)).status_code == 200  # K1 paid
    # Suppose the gateway had approved K2 too (it would not: it approves an order id
    # once): the shop only learns of it from a read-back, and the gateway is then down.
    from ecommerce.payments.machine import APPROVED, Reading

    k2_payment = await working.by_payment_key(k2)
    k2_payment = type(k2_payment)(**{**k2_payment.__dict__, "status": "DONE"})
    payment = await _payment_row(shop, order["orderId"])
    async with gateway_down(shop):
        await shop.ctx.payments._settle(shop.ctx.payments.purposes["ORDER"], payment,
                                        Reading(APPROVED, await working.by_payment_key(k1),
                                                strays=(k2_payment,)), surely_ended=True)
        assert await strays(shop) == [(k2, 2_000, "REFUNDING")]
        shop.clock.advance(timedelta(seconds=1))
        assert (await shop.ctx.payments.reconcile_once())["strays"] == 1  # still down
    assert (await shop.ctx.payments.reconcile_once())["strays"] == 1
    assert await strays(shop) == [(k2, 2_000, "REFUNDED")]
    assert await shown(client, user, order) == ("PAID", "DONE")  # K1 stays applied


async def _payment_row(shop, order_id: int) -> Any:  # noqa: ANN001
    from ecommerce.payments import machine

    async with shop.db.uow(write=False) as uow:
        return await machine.of_order(uow, order_id)


async def test_a_second_checkout_never_makes_the_audit_fail_a_healthy_order(shop, client,
                                                                           sandbox):
    user = await make_user(shop)
    pen = await make_product(shop, price=2_000, stock=2)
    order = await card_order(client, user, pen)
    pg_order_id = order["payment"]["pgOrderId"]
    k1, _ = await authorise(sandbox, 2_000, APPROVE, order_id=pg_order_id)
    assert (await confirm(client, user, order, k1)).status_code == 200
    await authorise(sandbox, 2_000, APPROVE, order_id=pg_order_id)  # opened afterwards
    await audited(shop)  # K1 DONE here and there; the second checkout approved nothing


async def test_two_confirms_at_once_both_answer_the_one_outcome(shop, client):
    """A double click: the second confirm waits for the first (still at the gateway, which
    answers after 2 s here) and answers its outcome; the gateway is asked once (issue 29,
    10; each answer's status follows its body, issue 32 M2)."""
    from ecommerce.payments.gateway import Gateway
    from ecommerce.standins.gateway import DEFAULT_SECRET_KEY

    with dev_pg("--timeout-delay", "2") as slow:
        payments = shop.ctx.payments
        payments.terms = type(payments.terms)(**{**payments.terms.__dict__,
                                                 "timeout_seconds": 60.0})
        await payments.gateway.close()
        payments.gateway = Gateway(slow, DEFAULT_SECRET_KEY, timeout=60.0)
        user = await make_user(shop)
        pen = await make_product(shop, price=2_000, stock=2)
        order = await card_order(client, user, pen)
        key, _ = await authorise(slow, 2_000, LATE, order_id=order["payment"]["pgOrderId"])
        answers = await asyncio.gather(*(confirm(client, user, order, key) for _ in range(6)))
        assert [(a.status_code, a.json()["status"]) for a in answers] == [(200, "PAID")] * 6
        declined_order = await card_order(client, user, pen)
        key, _ = await authorise(slow, 2_000, DECLINE,
                                 order_id=declined_order["payment"]["pgOrderId"])
        answers = await asyncio.gather(*(confirm(client, user, declined_order, key)
                                         for _ in range(4)))
        for answer in answers:  # every one of them the decline, not "not payable"
            assert "REJECT_CARD_PAYMENT" in assert_error(
                answer, 402, "PAYMENT_DECLINED")["message"]
        at_gateway = await payments.gateway.by_payment_key(key)
        assert at_gateway.status == "ABORTED"
        report = await audit_database(shop.db)
        assert not any(report.values()), report


async def test_a_customer_cancels_an_unpaid_card_order_at_once(shop, client, sandbox):
    user = await make_user(shop, balance=1_000)
    pen = await make_product(shop, price=3_000, stock=1)
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=1_000)
    key, _ = await authorise(sandbox, 2_000, APPROVE, order_id=order["payment"]["pgOrderId"])
    cancelled = await client.post(f"/api/orders/{order['orderId']}/cancel",
                                  headers=user.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["payment"]["status"]) == ("CANCELLED", "VOIDED")
    assert body["cancelledAt"] is not None and body["paidAt"] is None
    assert await state(shop, client, user, pen) == before  # every hold back, no refund
    late = await confirm(client, user, order, key)
    assert_error(late, 409, "ORDER_NOT_PAYABLE")
    at_gateway = await shop.ctx.payments.gateway.by_payment_key(key)
    assert at_gateway.status == "IN_PROGRESS"  # never asked to charge it
    assert await events_of(shop, order["orderId"]) == []  # never paid: nothing announced
    assert_error(await client.post(f"/api/orders/{order['orderId']}/cancel",
                                   headers=user.headers), 409, "ORDER_NOT_CANCELLABLE")
    await audited(shop)


class TestUnpaidOrdersAreBounded:
    @pytest.fixture
    def settings_overrides(self, settings_overrides):
        return {**settings_overrides, "payment_pending_per_user": 2,
                "payment_pending_max_quantity": 10, "payment_pending_stock_percent": 50}

    async def test_per_customer_per_order_and_per_product(self, shop, client, sandbox):
        user = await make_user(shop, balance=100_000)
        pen = await make_product(shop, price=1_000, stock=40)
        first = await card_order(client, user, pen, quantity=10)
        too_large = await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "paymentMethod": "CARD",
            "items": [{"productId": pen, "quantity": 11}]})
        assert_error(too_large, 409, "UNPAID_ORDER_TOO_LARGE")
        await card_order(client, user, pen, quantity=10)  # 20 of 40 held: the share
        third = await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "paymentMethod": "CARD",
            "items": [{"productId": pen, "quantity": 1}]})
        assert_error(third, 409, "TOO_MANY_UNPAID_ORDERS")
        other = await make_user(shop, balance=100_000)
        on_hold = await client.post("/api/orders", headers=other.headers, json={
            "userId": other.id, "paymentMethod": "CARD",
            "items": [{"productId": pen, "quantity": 1}]})
        assert_error(on_hold, 409, "STOCK_ON_HOLD")
        paying = await client.post("/api/orders", headers=other.headers, json={
            "userId": other.id, "items": [{"productId": pen, "quantity": 20}]})
        assert paying.status_code == 201  # who pays at once still buys the rest
        # Paying or cancelling one frees a place for the customer.
        key, _ = await authorise(sandbox, 10_000, order_id=first["payment"]["pgOrderId"])
        assert (await confirm(client, user, first, key)).status_code == 200
        assert (await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "paymentMethod": "CARD",
            "items": [{"productId": await make_product(shop, price=500, stock=5),
                       "quantity": 1}]})).status_code == 201
        await audited(shop)


async def test_a_whole_number_written_with_a_fraction_is_that_integer(shop, client, sandbox):
    """Issue 32 M6, decided: the API's integers are JSON Schema's (whose `integer` takes
    5000.0), so `balanceAmount: 5000.0` is 5000; a fraction that is not zero is refused,
    naming the field, and so is text (docs/api.md, "Conventions")."""
    user = await make_user(shop, balance=9_000)
    pen = await make_product(shop, price=8_000, stock=3)
    placed = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "paymentMethod": "CARD", "balanceAmount": 5000.0,
        "items": [{"productId": pen, "quantity": 1.0}]})
    assert placed.status_code == 201, placed.text
    assert (placed.json()["balanceAmount"], placed.json()["cardAmount"]) == (5_000, 3_000)
    for bad in (5000.5, "5000", True):
        refused = await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "paymentMethod": "CARD", "balanceAmount": bad,
            "items": [{"productId": pen, "quantity": 1}]})
        assert "balanceAmount" in assert_error(refused, 400, "INVALID_REQUEST")["message"]


async def test_a_flood_of_webhooks_never_delays_a_confirm(shop, client):
    """Issue 32 M1: webhooks' read-backs have their own small pool; past it a process
    answers 503 at once (the gateway sends a real notice again), so a flood of forged ones
    never holds up a confirm. The sandbox answers every call after 3 s here, so all the
    notices are in flight together."""
    from ecommerce.payments.gateway import Gateway
    from ecommerce.standins.gateway import DEFAULT_SECRET_KEY

    with dev_pg("--latency", "3") as slow:
        payments = shop.ctx.payments
        await payments.gateway.close()
        payments.gateway = Gateway(slow, DEFAULT_SECRET_KEY, timeout=20)
        user = await make_user(shop)
        pen = await make_product(shop, price=1_000, stock=5)
        target, paid = await card_order(client, user, pen), await card_order(client, user, pen)
        key, _ = await authorise(slow, 1_000, order_id=paid["payment"]["pgOrderId"])
        notice = {"data": {"orderId": target["payment"]["pgOrderId"]}}
        answers = await asyncio.gather(
            confirm(client, user, paid, key),
            *(client.post("/api/payments/webhook", json=notice) for _ in range(30)))
        confirmed, webhooks = answers[0], answers[1:]
        assert (confirmed.status_code, confirmed.json()["status"]) == (200, "PAID")
        statuses = sorted(w.status_code for w in webhooks)
        lane = payments.gateway.notices.capacity
        assert statuses == [200] * lane + [503] * (30 - lane), statuses
        busy = next(w for w in webhooks if w.status_code == 503)
        assert_error(busy, 503, "SERVER_BUSY") and busy.headers["Retry-After"] == "1"
        assert await shown(client, user, target) == ("PAYMENT_PENDING", "READY")


class TestATopUpGoesByCardWhereTheShopTakesCards:
    """Issue 29 item 1: with a card gateway a customer's top-up goes through the card; the
    direct recharge answers 403 CARD_TOPUP_REQUIRED (an admin may still credit anyone)."""

    @pytest.fixture
    def settings_overrides(self, settings_overrides):
        return {**settings_overrides, "balance_direct_topup": None}

    async def test_the_direct_recharge_is_closed_to_customers(self, shop, client):
        options = (await client.get("/api/payment-options")).json()
        assert (options["cardPayments"], options["directTopUp"]) == (True, False)
        assert options["checkoutUrl"].endswith("/checkout")
        user = await make_user(shop)
        refused = await client.post("/api/balance/recharge", headers=user.headers,
                                    json={"userId": user.id, "amount": 10_000})
        body = assert_error(refused, 403, "CARD_TOPUP_REQUIRED")
        assert "/api/balance/charges" in body["message"]
        admin = await make_user(shop, role="ADMIN")
        credited = await client.post("/api/balance/recharge", headers=admin.headers,
                                     json={"userId": user.id, "amount": 10_000})
        assert credited.json() == {"userId": user.id, "newBalance": 10_000}
        opened = await client.post("/api/balance/charges", headers=user.headers,
                                   json={"userId": user.id, "amount": 5_000})
        assert opened.status_code == 201 and opened.json()["status"] == "PENDING"


async def test_without_a_gateway_the_demo_top_up_is_direct(shop, client):
    """No gateway (the demo): the direct recharge is open, and the options say so."""
    await shop.ctx.payments.gateway.close()
    shop.ctx.payments.gateway = None
    shop.ctx.wallet.direct_topup = shop.settings.model_copy(update={
        "payment_gateway_url": None, "balance_direct_topup": None}).direct_topup
    options = (await client.get("/api/payment-options")).json()
    assert (options["cardPayments"], options["directTopUp"]) == (False, True)
    user = await make_user(shop)
    assert (await client.post("/api/balance/recharge", headers=user.headers, json={
        "userId": user.id, "amount": 1_000})).json()["newBalance"] == 1_000


async def test_no_ledger_entry_of_zero(shop, client, sandbox):
    """Issue 29 item 4: an order paid all by card, or all by a coupon, moves no balance and
    leaves no PAYMENT (nor, cancelled, a REFUND) entry of 0 won in the history."""
    from tests.factories import make_coupon
    from tests.payments.test_card_orders import pay

    user = await make_user(shop, balance=1_000)
    pen = await make_product(shop, price=3_000, stock=5)
    order = await card_order(client, user, pen)
    _, paid = await pay(sandbox, client, user, order)
    assert paid.status_code == 200
    await client.post(f"/api/orders/{order['orderId']}/cancel", headers=user.headers)
    await make_coupon(shop, code="ALLOFF", value=3_000)
    await client.post("/api/coupons/claim", headers=user.headers,
                      json={"userId": user.id, "couponCode": "ALLOFF"})
    free = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "couponCode": "ALLOFF", "items": [{"productId": pen, "quantity": 1}]})
    assert free.status_code == 201 and free.json()["paidAmount"] == 0
    history = (await client.get(f"/api/balance/{user.id}/history", headers=user.headers)).json()
    assert [(entry["type"], entry["amount"]) for entry in history] == [("RECHARGE", 1_000)]
    await audited(shop)
