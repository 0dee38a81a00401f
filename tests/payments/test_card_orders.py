"""Card orders and top-ups through the API, on every database, against `ecommerce dev-pg`
as a real process: approve, decline, no answer then settlement, expiry, the amount check,
confirm twice at once, cancel with the gateway down then up, the webhook with a forged
body, a late approval of an expired order (refunded). After each, the audit (with the
gateway's side) is clean."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ecommerce.audit import audit_database
from ecommerce.events.models import outbox
from ecommerce.payments.audit import audit_gateway
from ecommerce.payments.gateway import Gateway
from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY
from tests.factories import assert_error, make_coupon, make_product, make_user
from tests.payments.checkout import APPROVE, DECLINE, FAIL, LATE, authorise, dev_pg
from tests.scratch import free_port

# A gateway call may take 5 s before its outcome counts as unknown: a normal answer comes
# within that on any machine CI runs on; the late test card answers after 8 s, always past
# it. (A shorter bound made a normal confirm time out on a busy machine.)
TIMEOUT, LATE_ANSWER, GRACE = 5.0, "8", 0.5
SURELY_ENDED = timedelta(seconds=TIMEOUT + GRACE + 0.1)  # a confirm's call surely over


@pytest.fixture(scope="module")
def sandbox():
    with dev_pg("--timeout-delay", LATE_ANSWER) as url:
        yield url


@pytest.fixture
def settings_overrides(sandbox: str) -> dict[str, Any]:
    return card_settings(sandbox)


def card_settings(sandbox: str) -> dict[str, Any]:
    """The shop's settings for card payment through this sandbox."""
    return {"payment_gateway_url": sandbox, "payment_secret_key": DEFAULT_SECRET_KEY,
            "payment_client_key": DEFAULT_CLIENT_KEY, "payment_timeout_seconds": TIMEOUT,
            "payment_settle_grace_seconds": GRACE, "payment_hold_seconds": 600,
            "run_payment_jobs": False}


@contextlib.asynccontextmanager
async def gateway_down(shop):  # noqa: ANN001, ANN201
    """The shop's gateway unreachable (nothing listens where it points) while inside."""
    working = shop.ctx.payments.gateway
    shop.ctx.payments.gateway = Gateway(f"http://127.0.0.1:{free_port()}",
                                        DEFAULT_SECRET_KEY, timeout=0.5)
    try:
        yield
    finally:
        await shop.ctx.payments.gateway.close()
        shop.ctx.payments.gateway = working


async def audited(shop) -> None:  # noqa: ANN001
    report = await audit_database(shop.db)
    at_gateway = await audit_gateway(shop.db, shop.ctx.payments.gateway)
    report["gateway"] = at_gateway.violations + at_gateway.unchecked
    assert not any(report.values()), report


async def state(shop, client, user, product: int) -> dict:  # noqa: ANN001
    """What a card order holds: the buyer's balance, the product's stock, the coupons."""
    balance = (await client.get(f"/api/balance/{user.id}", headers=user.headers)).json()
    stock = (await client.get(f"/api/products/{product}")).json()["stock"]
    held = (await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)).json()
    return {"balance": balance["balance"], "stock": stock,
            "coupons": sorted((c["couponCode"], c["status"]) for c in held)}


async def events_of(shop, order_id: int) -> list[str]:  # noqa: ANN001
    async with shop.db.uow(write=False) as uow:
        return list((await uow.conn.execute(select(outbox.c.event_type).where(
            outbox.c.order_id == order_id).order_by(outbox.c.id))).scalars())


async def card_order(client, user, product: int, *, quantity: int = 1,  # noqa: ANN001
                     balance_amount: int | None = None, coupon: str | None = None) -> dict:
    body: dict[str, Any] = {"userId": user.id, "paymentMethod": "CARD",
                            "items": [{"productId": product, "quantity": quantity}]}
    if balance_amount is not None:
        body["balanceAmount"] = balance_amount
    if coupon:
        body["couponCode"] = coupon
    placed = await client.post("/api/orders", headers=user.headers, json=body)
    assert placed.status_code == 201, placed.text
    return placed.json()


async def pay(sandbox: str, client, user, order: dict, card: str = APPROVE):  # noqa: ANN001
    """The customer at the gateway's checkout, then the shop's success page's confirm."""
    payment = order["payment"]
    key, _ = await authorise(sandbox, payment["amount"], card, order_id=payment["pgOrderId"])
    return key, await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                                  headers=user.headers,
                                  json={"paymentKey": key, "amount": payment["amount"]})


async def test_a_card_order_holds_then_is_paid_once(shop, client, sandbox):
    user = await make_user(shop, balance=5_000)
    pen = await make_product(shop, price=4_000, stock=3)
    await make_coupon(shop, code="CARD10", discount_type="PERCENT", value=10)
    assert (await client.post("/api/coupons/claim", headers=user.headers, json={
        "userId": user.id, "couponCode": "CARD10"})).status_code == 200
    before = await state(shop, client, user, pen)

    order = await card_order(client, user, pen, quantity=2, balance_amount=1_000,
                             coupon="CARD10")
    assert (order["status"], order["paymentMethod"]) == ("PAYMENT_PENDING", "CARD")
    assert (order["paidAmount"], order["balanceAmount"], order["cardAmount"]) == (
        7_200, 1_000, 6_200)
    payment = order["payment"]
    assert payment["amount"] == 6_200 and payment["clientKey"] == DEFAULT_CLIENT_KEY
    assert payment["pgOrderId"] and payment["expiresAt"].endswith("Z")
    # Held like a paid order: nobody else can take them; not sold nor announced yet.
    held = await state(shop, client, user, pen)
    assert held == {"balance": 4_000, "stock": 1, "coupons": [("CARD10", "USED")]}
    assert await events_of(shop, order["orderId"]) == []
    assert (await client.get("/api/products/top")).json() == []

    key, paid = await pay(sandbox, client, user, order)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "PAID" and paid.json()["payment"]["paymentKey"] == key
    assert await events_of(shop, order["orderId"]) == ["order.completed"]
    assert (await client.get("/api/products/top")).json()[0]["soldQuantity"] == 2
    again = await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                              headers=user.headers, json={"paymentKey": key, "amount": 6_200})
    assert (again.status_code, again.json()["status"]) == (200, "PAID")  # a repeat
    # The first answer was built from what paying read; a repeat's and the order's own
    # page read it back: the same order.
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert paid.json() == again.json() == shown
    assert await events_of(shop, order["orderId"]) == ["order.completed"]
    assert before["stock"] - 2 == (await state(shop, client, user, pen))["stock"]
    await audited(shop)


async def test_a_decline_gives_every_hold_back(shop, client, sandbox):
    user = await make_user(shop, balance=5_000)
    pen = await make_product(shop, price=3_000, stock=2)
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=500)
    _, declined = await pay(sandbox, client, user, order, DECLINE)
    body = assert_error(declined, 402, "PAYMENT_DECLINED")
    assert "REJECT_CARD_PAYMENT" in body["message"]
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert shown["status"] == "PAYMENT_FAILED" and shown["payment"]["status"] == "FAILED"
    assert await state(shop, client, user, pen) == before
    assert await events_of(shop, order["orderId"]) == ["order.payment_failed"]
    retry = await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                              headers=user.headers, json={"paymentKey": "x", "amount": 2_500})
    assert_error(retry, 409, "ORDER_NOT_PAYABLE")
    await audited(shop)


async def test_a_wrong_amount_is_refused_before_the_gateway(shop, client, sandbox):
    user = await make_user(shop)
    pen = await make_product(shop, price=3_000)
    order = await card_order(client, user, pen)
    key, _ = await authorise(sandbox, 3_000, order_id=order["payment"]["pgOrderId"])
    wrong = await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                              headers=user.headers, json={"paymentKey": key, "amount": 30})
    assert_error(wrong, 400, "PAYMENT_AMOUNT_MISMATCH")
    at_gateway = await shop.ctx.payments.gateway.by_order_id(order["payment"]["pgOrderId"])
    assert at_gateway.status == "IN_PROGRESS"  # never asked to confirm
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert shown["status"] == "PAYMENT_PENDING"
    malformed = await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                                  headers=user.headers, json={"amount": 3_000})
    assert_error(malformed, 400, "INVALID_REQUEST")
    too_much = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "paymentMethod": "CARD", "balanceAmount": 3_001,
        "items": [{"productId": pen, "quantity": 1}]})
    assert "balanceAmount" in assert_error(too_much, 400, "INVALID_REQUEST")["message"]
    await audited(shop)


async def test_no_answer_is_202_then_settled_from_a_lookup(shop, client, sandbox):
    shop.clock.freeze(shop.clock.now())  # the job's "too early" must not depend on load
    user = await make_user(shop, balance=1_000)
    pen = await make_product(shop, price=2_000, stock=5)
    late = await card_order(client, user, pen)  # charged, answered after the call gave up
    _, unknown = await pay(sandbox, client, user, late, LATE)
    assert unknown.status_code == 202 and unknown.json()["status"] == "PAYMENT_UNKNOWN"
    failing = await card_order(client, user, pen)  # a 5xx: not charged
    _, broken = await pay(sandbox, client, user, failing, FAIL)
    assert broken.status_code == 202 and broken.json()["status"] == "PAYMENT_UNKNOWN"
    await shop.ctx.payments.reconcile_once()  # too early: a lookup might not show a payment yet
    statuses = {o["orderId"]: o["status"] for o in (await client.get(
        f"/api/users/{user.id}/orders", headers=user.headers)).json()}
    assert set(statuses.values()) == {"PAYMENT_UNKNOWN"}
    shop.clock.advance(SURELY_ENDED)  # both calls surely ended
    assert (await shop.ctx.payments.reconcile_once())["settle"] == 2
    paid = (await client.get(f"/api/orders/{late['orderId']}", headers=user.headers)).json()
    failed = (await client.get(f"/api/orders/{failing['orderId']}",
                               headers=user.headers)).json()
    assert (paid["status"], failed["status"]) == ("PAID", "PAYMENT_FAILED")
    assert await events_of(shop, late["orderId"]) == ["order.completed"]
    assert (await client.get(f"/api/products/{pen}")).json()["stock"] == 4
    await audited(shop)


async def test_confirm_twice_at_once_charges_once(shop, client, sandbox):
    user = await make_user(shop)
    pen = await make_product(shop, price=2_000)
    order = await card_order(client, user, pen)
    key, _ = await authorise(sandbox, 2_000, order_id=order["payment"]["pgOrderId"])
    answers = await asyncio.gather(*(client.post(
        f"/api/orders/{order['orderId']}/payment/confirm", headers=user.headers,
        json={"paymentKey": key, "amount": 2_000}) for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 202}, statuses
    assert await events_of(shop, order["orderId"]) == ["order.completed"]
    await audited(shop)


async def test_an_expired_hold_is_given_back_and_cannot_be_paid(shop, client, sandbox):
    user = await make_user(shop, balance=3_000)
    pen = await make_product(shop, price=3_000, stock=1)
    await make_coupon(shop, code="LATE5", value=500)
    await client.post("/api/coupons/claim", headers=user.headers,
                      json={"userId": user.id, "couponCode": "LATE5"})
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=2_000, coupon="LATE5")
    other = await make_user(shop, balance=10_000)
    taken = await client.post("/api/orders", headers=other.headers, json={
        "userId": other.id, "items": [{"productId": pen, "quantity": 1}]})
    assert_error(taken, 409, "OUT_OF_STOCK")  # held
    shop.clock.advance(timedelta(seconds=601))
    assert (await shop.ctx.payments.reconcile_once())["expire"] == 1
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert (shown["status"], shown["payment"]["status"]) == ("EXPIRED", "EXPIRED")
    assert await state(shop, client, user, pen) == before
    _, late = await pay(sandbox, client, user, order)
    assert_error(late, 409, "ORDER_NOT_PAYABLE")
    assert (await shop.ctx.payments.gateway.by_order_id(order["payment"]["pgOrderId"])
            ).status == "IN_PROGRESS"  # not charged
    # Someone charges it at the gateway all the same (a stale tab, another system): the
    # gateway's notice makes the shop read it back and refund it, as the order is gone.
    key = (await shop.ctx.payments.gateway.by_order_id(order["payment"]["pgOrderId"])).payment_key
    await shop.ctx.payments.gateway.confirm(key, order["payment"]["pgOrderId"], 500)
    notice = await client.post("/api/payments/webhook", json={
        "eventType": "PAYMENT_STATUS_CHANGED",
        "data": {"orderId": order["payment"]["pgOrderId"], "status": "DONE"}})
    assert notice.status_code == 200
    assert (await shop.ctx.payments.gateway.by_order_id(order["payment"]["pgOrderId"])
            ).status == "CANCELED"
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert (shown["status"], shown["payment"]["status"]) == ("EXPIRED", "CANCELLED")
    assert await state(shop, client, user, pen) == before
    await audited(shop)


async def test_a_forged_webhook_changes_nothing(shop, client, sandbox):
    user = await make_user(shop)
    pen = await make_product(shop, price=2_000, stock=1)
    order = await card_order(client, user, pen)
    await authorise(sandbox, 2_000, order_id=order["payment"]["pgOrderId"])
    for forged in ({"eventType": "PAYMENT_STATUS_CHANGED", "data": {
                        "orderId": order["payment"]["pgOrderId"], "status": "DONE",
                        "totalAmount": 2_000, "paymentKey": "forged"}},
                   {"data": {"orderId": "ORD-not-ours"}}, {"whatever": [1, 2]}):
        answer = await client.post("/api/payments/webhook", json=forged)
        assert answer.status_code == 200, answer.text
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert shown["status"] == "PAYMENT_PENDING" and shown["payment"]["paymentKey"] is None
    assert_error(await client.post("/api/payments/webhook", content=b"{",
                                   headers={"Content-Type": "application/json"}),
                 400, "INVALID_REQUEST")
    await audited(shop)


async def test_cancel_refunds_the_card_once_also_after_the_gateway_was_down(shop, client,
                                                                            sandbox):
    user = await make_user(shop, balance=2_000)
    pen = await make_product(shop, price=5_000, stock=2)
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=2_000)
    _, paid = await pay(sandbox, client, user, order)
    assert paid.status_code == 200
    working = shop.ctx.payments.gateway
    async with gateway_down(shop):
        pending = await client.post(f"/api/orders/{order['orderId']}/cancel",
                                    headers={**user.headers, "Idempotency-Key": "c-1"})
        assert (pending.status_code, pending.json()["status"]) == (202, "CANCEL_PENDING")
        assert_error(await client.post(f"/api/orders/{order['orderId']}/cancel",
                                       headers=user.headers), 409, "ORDER_NOT_CANCELLABLE")
        await shop.ctx.payments.reconcile_once()  # still down: still pending, nothing given back
        assert (await state(shop, client, user, pen))["stock"] == 1
    assert (await shop.ctx.payments.reconcile_once())["refund"] == 1
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert (shown["status"], shown["payment"]["status"]) == ("CANCELLED", "CANCELLED")
    assert shown["cancelledAt"] is not None
    assert await state(shop, client, user, pen) == before
    at_gateway = await working.by_order_id(order["payment"]["pgOrderId"])
    assert at_gateway.status == "CANCELED" and at_gateway.refunded == 3_000
    assert await events_of(shop, order["orderId"]) == ["order.completed", "order.cancelled"]
    replay = await client.post(f"/api/orders/{order['orderId']}/cancel",
                               headers={**user.headers, "Idempotency-Key": "c-1"})
    assert (replay.status_code, replay.json()["status"]) == (200, "CANCELLED")
    await audited(shop)


async def test_a_top_up_by_card_credits_once(shop, client, sandbox):
    user = await make_user(shop, balance=100)
    opened = await client.post("/api/balance/charges", headers=user.headers,
                               json={"userId": user.id, "amount": 30_000})
    assert opened.status_code == 201, opened.text
    charge = opened.json()
    assert charge["status"] == "PENDING" and charge["payment"]["amount"] == 30_000
    key, _ = await authorise(sandbox, 30_000, order_id=charge["payment"]["pgOrderId"])
    url = f"/api/balance/charges/{charge['chargeId']}/confirm"
    answers = await asyncio.gather(*(client.post(url, headers=user.headers, json={
        "paymentKey": key, "amount": 30_000}) for _ in range(4)))
    assert {a.status_code for a in answers} <= {200, 202}
    again = await client.post(url, headers=user.headers,
                              json={"paymentKey": key, "amount": 30_000})
    assert again.json() == {"userId": user.id, "newBalance": 30_100}
    # The one that credited it answered from the credit, the others read it back: alike.
    assert all(a.json() == again.json() for a in answers if a.status_code == 200)
    history = (await client.get(f"/api/balance/{user.id}/history", headers=user.headers)).json()
    assert [(h["type"], h["amount"]) for h in history].count(("RECHARGE", 30_000)) == 1
    # A decline; someone else's charge.
    declined = (await client.post("/api/balance/charges", headers=user.headers,
                                  json={"userId": user.id, "amount": 1_000})).json()
    key, _ = await authorise(sandbox, 1_000, DECLINE, order_id=declined["payment"]["pgOrderId"])
    assert_error(await client.post(f"/api/balance/charges/{declined['chargeId']}/confirm",
                                   headers=user.headers, json={"paymentKey": key,
                                                               "amount": 1_000}),
                 402, "PAYMENT_DECLINED")
    stranger = await make_user(shop)
    assert_error(await client.post(url, headers=stranger.headers,
                                   json={"paymentKey": key, "amount": 30_000}),
                 404, "CHARGE_NOT_FOUND")
    assert_error(await client.post("/api/balance/charges", headers=stranger.headers,
                                   json={"userId": user.id, "amount": 1_000}),
                 403, "FORBIDDEN")
    admin = await make_user(shop, role="ADMIN")
    listed = (await client.get("/api/admin/payments?kind=CHARGE", headers=admin.headers)).json()
    assert sorted(p["status"] for p in listed) == ["DONE", "FAILED"]
    assert all(p["chargeId"] == p["paymentId"] for p in listed)
    await audited(shop)


async def test_without_a_gateway_card_payment_is_unavailable(shop, client):
    shop.ctx.payments.gateway, saved = None, shop.ctx.payments.gateway
    try:
        user = await make_user(shop, balance=5_000)
        pen = await make_product(shop, price=1_000)
        refused = await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "paymentMethod": "CARD",
            "items": [{"productId": pen, "quantity": 1}]})
        assert_error(refused, 409, "PAYMENT_METHOD_UNAVAILABLE")
        assert_error(await client.post("/api/balance/charges", headers=user.headers,
                                       json={"userId": user.id, "amount": 1_000}),
                     409, "PAYMENT_METHOD_UNAVAILABLE")
        by_balance = await client.post("/api/orders", headers=user.headers, json={
            "userId": user.id, "items": [{"productId": pen, "quantity": 1}]})
        assert by_balance.status_code == 201
        assert (by_balance.json()["paymentMethod"], by_balance.json()["payment"]) == (
            "BALANCE", None)
    finally:
        shop.ctx.payments.gateway = saved


async def test_the_audit_sees_what_a_broken_card_payment_would_leave(shop, client, sandbox):
    """Invariants 7 and 8 fail when they should: a hold past its expiry, a paid order
    whose payment is not approved, a payment the gateway charged that the shop lost."""
    from sqlalchemy import update

    from ecommerce.orders.models import orders
    from ecommerce.payments.models import payments

    user = await make_user(shop)
    pen = await make_product(shop, price=2_000, stock=5)
    stale = await card_order(client, user, pen)
    async with shop.db.uow() as uow:  # its hold ended two minutes ago, and nobody expired it
        await uow.conn.execute(update(payments).where(
            payments.c.order_id == stale["orderId"]).values(
            expires_at=shop.clock.now() - timedelta(minutes=2)))
    report = await audit_database(shop.db)
    assert report["8. no card order holds past its expiry by more than a minute"]
    paid = await card_order(client, user, pen)
    await pay(sandbox, client, user, paid)
    async with shop.db.uow() as uow:  # the shop forgets it approved the payment
        await uow.conn.execute(update(payments).where(
            payments.c.order_id == paid["orderId"]).values(status="FAILED"))
        await uow.conn.execute(update(orders).where(orders.c.id == stale["orderId"])
                               .values(status="EXPIRED"))
    report = await audit_database(shop.db)
    problems = report["7. every card order and charge has its payment, in the state it needs"]
    assert any(f"card order {paid['orderId']} (PAID)" in p for p in problems), problems
    assert any("payment" in p and "DONE at the gateway" in p
               for p in (await audit_gateway(shop.db, shop.ctx.payments.gateway)).violations)


async def test_an_approval_later_than_the_lookup_that_failed_it_is_refunded(shop, client,
                                                                            sandbox):
    """The confirm never reached the gateway (down), the job's lookup found no approval
    and failed the order; then the gateway processes the confirm after all. The job's
    second look, ten minutes on, refunds it: nothing charged without an order."""
    shop.clock.freeze(shop.clock.now())
    user = await make_user(shop, balance=1_000)
    pen = await make_product(shop, price=4_000, stock=1)
    before = await state(shop, client, user, pen)
    order = await card_order(client, user, pen, balance_amount=1_000)
    pg_order_id = order["payment"]["pgOrderId"]
    key, _ = await authorise(sandbox, 3_000, order_id=pg_order_id)
    working = shop.ctx.payments.gateway
    async with gateway_down(shop):
        lost = await client.post(f"/api/orders/{order['orderId']}/payment/confirm",
                                 headers=user.headers, json={"paymentKey": key, "amount": 3_000})
        assert (lost.status_code, lost.json()["status"]) == (202, "PAYMENT_UNKNOWN")
    shop.clock.advance(SURELY_ENDED)
    assert (await shop.ctx.payments.reconcile_once())["settle"] == 1
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert (shown["status"], shown["payment"]["status"]) == ("PAYMENT_FAILED", "FAILED")
    assert await state(shop, client, user, pen) == before

    await working.confirm(key, pg_order_id, 3_000)  # the gateway approves it after all
    assert (await shop.ctx.payments.reconcile_once())["recheck"] == 0  # not yet: every ten minutes
    shop.clock.advance(timedelta(seconds=601))
    assert (await shop.ctx.payments.reconcile_once())["recheck"] == 1
    assert (await working.by_order_id(pg_order_id)).status == "CANCELED"
    shown = (await client.get(f"/api/orders/{order['orderId']}", headers=user.headers)).json()
    assert (shown["status"], shown["payment"]["status"]) == ("PAYMENT_FAILED", "CANCELLED")
    assert await state(shop, client, user, pen) == before
    assert await events_of(shop, order["orderId"]) == ["order.payment_failed"]
    await audited(shop)
