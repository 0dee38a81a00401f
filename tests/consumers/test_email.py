"""The `email` consumer against a real SMTP server (aiosmtpd, dev-mail's mailbox), on each
database; the admin's view of the consumers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from ecommerce.audit import audit_database
from ecommerce.consumers.email import Email, SmtpServer
from ecommerce.consumers.runner import Runner
from ecommerce.standins.mail import Mailbox, smtp_server
from tests.consumers.test_data_platform import drain, place, rows
from tests.factories import assert_error, make_admin, make_product, make_user
from tests.payments.checkout import DECLINE
from tests.payments.test_card_orders import (
    SURELY_ENDED,
    card_order,
    card_settings,
    pay,
    sandbox,
)
from tests.scratch import free_port
from tests.waiting import until

__all__ = ["sandbox"]  # the card tests' gateway, for a declined order


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any], sandbox: str) -> dict[str, Any]:
    return {**broker_overrides, **card_settings(sandbox)}


class Refusing(Mailbox):
    """A mailbox whose server refuses one recipient (550) until told otherwise."""

    refused: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: ANN001, N802
        if address == self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@contextlib.contextmanager
def smtp(mailbox: Mailbox | None = None, port: int | None = None) -> Iterator[Mailbox]:
    mailbox = mailbox or Mailbox()
    server = smtp_server(mailbox, "127.0.0.1", port or free_port())
    server.start()
    try:
        yield mailbox
    finally:
        server.stop()


def runner_for(shop, port: int, **overrides: Any) -> Runner:  # noqa: ANN001
    settings = shop.settings.model_copy(update={
        "smtp_url": f"smtp://127.0.0.1:{port}", "smtp_from": "shop@shop.test",
        "smtp_timeout_seconds": 30, **overrides})  # a busy machine answers slowly
    runner = Runner(Email(settings, shop.db, shop.clock), shop.db, settings, shop.ctx.redis,
                    shop.clock)
    shop.closing.append(runner)
    return runner


async def _failed(shop, client, user, order_id: int) -> bool:  # noqa: ANN001
    """One pass of the payment job, then whether the order is PAYMENT_FAILED."""
    await shop.ctx.payments.reconcile_once()
    order = await client.get(f"/api/orders/{order_id}", headers=user.headers)
    return order.json()["status"] == "PAYMENT_FAILED"


async def with_email(shop, address: str | None, balance: int = 100_000):  # noqa: ANN001
    user = await make_user(shop, balance=balance)
    if address:
        changed = await shop.client.patch("/api/users/me", headers=user.headers,
                                          json={"email": address})
        assert changed.status_code == 200, changed.text
    return user


async def test_order_mails_in_korean_with_a_plain_text_part(shop, client, sandbox):
    buyer = await with_email(shop, "buyer@example.com")
    silent = await with_email(shop, None)
    pen = await make_product(shop, price=3_000, stock=10, name="만년필")
    placed = await place(shop, client, buyer, pen, 2)
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=buyer.headers)
    await place(shop, client, silent, pen)
    declined = await card_order(client, buyer, pen)
    _, answer = await pay(sandbox, client, buyer, declined, DECLINE)
    if answer.status_code == 202:
        # The gateway's answer did not come within the call's bound (seen once on a busy
        # machine: the sandbox's connect timed out): the shop settles the payment from a
        # read-back once the call has surely ended, as its job does, and fails the order.
        shop.clock.advance(SURELY_ENDED)
        await until(lambda: _failed(shop, client, buyer, declined["orderId"]),
                    what="the declined card order settled as PAYMENT_FAILED")
    else:
        assert answer.status_code == 402, answer.text
    port = free_port()
    with smtp(port=port) as mailbox:
        assert await drain(runner_for(shop, port)) == 4
    mails = [mail for mail in mailbox.snapshot() if f"{placed['orderId']})" in mail.subject] + [
        mail for mail in mailbox.snapshot() if f"{declined['orderId']})" in mail.subject]
    assert [mail.subject for mail in mails] == [  # one order's mails in its events' order
        f"[온라인 상점] 주문이 완료되었습니다 (주문번호 {placed['orderId']})",
        f"[온라인 상점] 주문이 취소되었습니다 (주문번호 {placed['orderId']})",
        f"[온라인 상점] 결제에 실패했습니다 (주문번호 {declined['orderId']})"]
    assert {tuple(mail.recipients) for mail in mails} == {("buyer@example.com",)}
    assert mails[0].sender == "shop@shop.test"
    assert "만년필 × 2: 6,000원" in mails[0].text and "결제 금액: 6,000원" in mails[0].text
    assert "<td>만년필</td>" in mails[0].html and "환불 금액" in mails[1].text
    stored = await rows(shop, "email")
    assert sorted(mail.message_id for mail in mails) == sorted(
        f"<{row.event_id}@shop.test>" for row in stored if row.outcome == "sent")
    assert sorted(row.outcome for row in stored) == ["no e-mail address", "sent", "sent", "sent"]
    assert mailbox.received == 3
    assert not any((await audit_database(shop.db)).values())
    admin = await make_admin(shop)  # the data platform's list: only the events it takes
    listed = (await client.get("/api/admin/events", headers=admin.headers)).json()
    assert sorted(e["eventType"] for e in listed) == [
        "order.cancelled", "order.completed", "order.completed"]


async def test_the_smtp_server_down_for_a_while_then_back_every_mail_once(shop, client):
    product = await make_product(shop, price=1_000, stock=50)
    for n in range(5):
        await place(shop, client, await with_email(shop, f"u{n}@example.com"), product)
    port = free_port()
    runner = runner_for(shop, port)
    assert await drain(runner) == 5  # nobody listens: every attempt fails
    assert {(row.status, row.attempts) for row in await rows(shop, "email")} == {("RETRY", 1)}
    shop.clock.advance(timedelta(seconds=1.5))
    assert await drain(runner) == 5  # still down
    shop.clock.advance(timedelta(seconds=2.5))
    with smtp(port=port) as mailbox:
        assert await drain(runner) == 5
        assert await drain(runner) == 0
    assert mailbox.received == 5 and len(mailbox.snapshot()) == 5
    assert {row.status for row in await rows(shop, "email")} == {"HANDLED"}


async def test_a_refused_address_goes_dead_at_once_and_an_admin_retry_delivers_it(shop,
                                                                                   client):
    """550 to the address is for good: dead at the first refusal, not retried (quick or
    slow), until an admin retries it once the address is fixed (issue 32, M3)."""
    admin = await make_admin(shop)
    product = await make_product(shop, price=1_000, stock=50)
    poisoned = await with_email(shop, "broken@example.com")
    await place(shop, client, poisoned, product)
    await place(shop, client, await with_email(shop, "fine@example.com"), product)
    mailbox, port = Refusing(), free_port()
    mailbox.refused = "broken@example.com"
    runner = runner_for(shop, port, consumer_max_attempts=2)
    with smtp(mailbox, port):
        assert await drain(runner) == 2
        shop.clock.advance(timedelta(hours=1))
        assert await drain(runner) == 0  # dead already: not tried again on its own
        assert [mail.recipients for mail in mailbox.snapshot()] == [["fine@example.com"]]
        overview = await client.get("/api/admin/consumers", headers=admin.headers)
        assert {c["name"]: (c["lag"], c["pending"], c["dead"]) for c in overview.json()} == {
            "data-platform": (2, 0, 0), "email": (0, 0, 1)}
        dead = (await client.get("/api/admin/consumers/email/dead",
                                 headers=admin.headers)).json()
        assert len(dead) == 1 and "550" in dead[0]["lastError"] and dead[0]["attempts"] == 1
        event_id = dead[0]["eventId"]
        mailbox.refused = None  # the fix (the address was repaired at the mail server)
        retried = await client.post(f"/api/admin/consumers/email/dead/{event_id}/retry",
                                    headers=admin.headers)
        assert retried.status_code == 200 and retried.json()["status"] == "RETRY"
        assert_error(await client.post(f"/api/admin/consumers/email/dead/{event_id}/retry",
                                       headers=admin.headers), 409, "EVENT_NOT_RETRYABLE")
        assert await drain(runner) == 1
    assert [mail.recipients for mail in mailbox.snapshot()] == [
        ["fine@example.com"], ["broken@example.com"]]
    overview = await client.get("/api/admin/consumers", headers=admin.headers)
    assert [(c["name"], c["lag"], c["dead"], c["configured"]) for c in overview.json()] == [
        ("data-platform", 2, 0, False), ("email", 0, 0, False)]
    await runner.sweep()  # each sweep sets the lag gauge
    metrics = (await client.get("/metrics")).text
    assert 'consumer_lag{consumer="email"} 0.0' in metrics
    assert 'consumer_events_total{consumer="email",status="dead"}' in metrics
    assert_error(await client.get("/api/admin/consumers/nope/dead", headers=admin.headers),
                 404, "CONSUMER_NOT_FOUND")
    assert_error(await client.post("/api/admin/consumers/email/dead/nope/retry",
                                   headers=admin.headers), 404, "EVENT_NOT_FOUND")
    assert_error(await client.post(f"/api/admin/consumers/email/dead/{'x' * 37}/retry",
                                   headers=admin.headers), 400, "INVALID_REQUEST")
    assert_error(await client.get("/api/admin/consumers/email/dead?size=0",
                                  headers=admin.headers), 400, "INVALID_REQUEST")
    assert_error(await client.post("/api/admin/consumers/data-platform/dead/"
                                   f"{event_id}/retry", headers=admin.headers),
                 409, "EVENT_NOT_RETRYABLE")  # never taken by that consumer: nothing to retry
    assert_error(await client.get("/api/admin/consumers", headers=poisoned.headers),
                 403, "FORBIDDEN")


async def test_an_event_older_than_a_day_gets_no_mail(shop, client):
    await place(shop, client, await with_email(shop, "late@example.com"),
                await make_product(shop, price=1_000, stock=5))
    shop.clock.advance(timedelta(hours=25))  # the consumer was switched on a day late
    port = free_port()
    with smtp(port=port) as mailbox:
        assert await drain(runner_for(shop, port)) == 1
    assert mailbox.received == 0
    assert [row.outcome for row in await rows(shop, "email")] == ["too old"]


@pytest.mark.parametrize("url, expected", [
    ("smtp://mail.test:2525", ("mail.test", 2525, None, None, False, None)),
    ("smtps://me:p%40ss@mail.test", ("mail.test", 465, "me", "p@ss", True, None)),
    ("smtp+starttls://mail.test:587", ("mail.test", 587, None, None, False, True)),
])
def test_smtp_urls(url, expected):
    server = SmtpServer.parse(url)
    assert (server.host, server.port, server.username, server.password, server.use_tls,
            server.start_tls) == expected


@pytest.mark.parametrize("url", ["ftp://mail.test", "smtp://", "smtp://mail.test:port"])
def test_a_wrong_smtp_url_is_refused_at_start(url):
    from pydantic import ValidationError

    from ecommerce.platform.settings import Settings

    with pytest.raises(ValidationError, match="SMTP_URL must be"):
        Settings(_env_file=None, smtp_url=url)


class TestThroughTheStream:
    """The same consumer with Redis: the publisher's stream and the consumer's group."""

    @pytest.fixture
    def settings_overrides(self):
        from tests.backends import REDIS_URL, require
        from tests.conftest import RUN_ID

        return {"redis_url": require("redis", REDIS_URL),
                "redis_prefix": f"test:{RUN_ID}:mail"}

    async def test_each_order_mailed_once_through_the_group(self, shop, client):
        from ecommerce.events.publisher import Publisher, StreamSink

        product = await make_product(shop, price=1_000, stock=50)
        port = free_port()
        runner = runner_for(shop, port)
        publisher = Publisher(shop.db, shop.settings,
                              StreamSink(shop.ctx.redis, shop.settings.stream_key), shop.clock)
        with smtp(port=port) as mailbox:
            assert await runner.run_once() == 0  # the group, at the stream's end
            for n in range(6):
                await place(shop, client, await with_email(shop, f"s{n}@example.com"), product)
            assert await publisher.run_once() == 6
            assert await drain(runner) == 6
            assert await drain(runner_for(shop, port)) == 0  # another worker: nothing left
        assert mailbox.received == 6 and len(mailbox.snapshot()) == 6
        stream = f"{shop.settings.redis_prefix}:{shop.settings.event_stream}"
        assert (await shop.ctx.redis.xpending(stream, "email"))["pending"] == 0
        await shop.ctx.redis.delete(stream)
        assert not any((await audit_database(shop.db)).values())


async def test_a_card_orders_mails_say_when_what_each_part_is_and_link_the_orders(shop, client,
                                                                                   sandbox):
    """Issue 29 item 7: the date, the balance and card parts (and on a cancellation where
    each goes back), a link to the orders; a layout that fits a phone."""
    buyer = await with_email(shop, "split@example.com", balance=2_000)
    pen = await make_product(shop, price=5_000, stock=3, name="만년필")
    order = await card_order(client, buyer, pen, balance_amount=2_000)
    _, paid = await pay(sandbox, client, buyer, order)
    assert paid.status_code == 200, paid.text
    cancelled = await client.post(f"/api/orders/{order['orderId']}/cancel",
                                  headers=buyer.headers)
    assert cancelled.json()["status"] == "CANCELLED"
    port = free_port()
    with smtp(port=port) as mailbox:
        assert await drain(runner_for(shop, port, shop_url="https://shop.example")) == 2
    completed, refunded = mailbox.snapshot()
    placed = shop.clock.now().astimezone(shop.settings.timezone).strftime("%Y-%m-%d")
    assert f"주문일시 {placed}" in completed.text
    assert "잔액 결제 2,000원 · 카드 결제 3,000원" in completed.text
    assert ("잔액으로 결제하신 2,000원은 잔액으로, 카드로 결제하신 3,000원은 카드로 "
            "환불됩니다.") in refunded.text
    assert "주문 내역: https://shop.example/shop/#/orders" in refunded.text
    assert 'href="https://shop.example/shop/#/orders"' in refunded.html
    assert 'name="viewport" content="width=device-width' in completed.html
