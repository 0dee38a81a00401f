from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ecommerce.audit import audit_database
from ecommerce.coupons.models import user_coupons
from ecommerce.events.models import outbox
from ecommerce.orders.models import orders
from ecommerce.wallet.models import balance_ledger
from tests.backends import BEFORE_THE_DATABASE
from tests.factories import (
    assert_error,
    make_admin,
    make_coupon,
    make_product,
    make_user,
)


async def order(client, user, items=None, coupon=None, key=None, **extra):
    body = {"userId": user.id, **extra}
    if items is not None:
        body["items"] = [{"productId": p, "quantity": q} for p, q in items]
    if coupon is not None:
        body["couponCode"] = coupon
    headers = {**user.headers, **({"Idempotency-Key": key} if key else {})}
    return await client.post("/api/orders", headers=headers, json=body)


async def snapshot(shop, client, user, product_ids) -> dict:
    """Everything an order may change, read back."""
    balance = (await client.get(f"/api/balance/{user.id}", headers=user.headers)).json()
    stocks = [(await client.get(f"/api/products/{p}")).json().get("stock") for p in product_ids]
    async with shop.db.uow(write=False) as uow:
        counts = {}
        for name, table in (("orders", orders), ("ledger", balance_ledger), ("outbox", outbox)):
            counts[name] = (await uow.conn.execute(select(func.count()).select_from(table))
                            ).scalar_one()
        held = (await uow.conn.execute(select(user_coupons.c.id, user_coupons.c.status)
                                       .order_by(user_coupons.c.id))).all()
    return {"balance": balance, "stocks": stocks, "counts": counts, "held": held}


async def test_multi_line_order_charges_once_and_takes_every_stock(shop, client):
    user = await make_user(shop, balance=100_000)
    a = await make_product(shop, price=1_200, stock=10, name="Pen")
    b = await make_product(shop, price=30_000, stock=2, name="Bag")
    response = await order(client, user, [(b, 1), (a, 2), (a, 1)])  # `a` twice: merged
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "PAID" and body["userId"] == user.id
    assert body["items"] == [
        {"productId": a, "name": "Pen", "unitPrice": 1_200, "quantity": 3, "lineTotal": 3_600},
        {"productId": b, "name": "Bag", "unitPrice": 30_000, "quantity": 1,
         "lineTotal": 30_000}]
    assert (body["totalPrice"], body["discountAmount"], body["paidAmount"]) == (33_600, 0,
                                                                                33_600)
    assert body["couponCode"] is None and body["createdAt"].endswith("Z")
    assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
            ).json()["balance"] == 66_400
    assert [(await client.get(f"/api/products/{p}")).json()["stock"] for p in (a, b)] == [7, 1]
    history = (await client.get(f"/api/balance/{user.id}/history", headers=user.headers)).json()
    assert (history[0]["type"], history[0]["amount"], history[0]["orderId"]) == (
        "PAYMENT", -33_600, body["orderId"])
    fetched = await client.get(f"/api/orders/{body['orderId']}", headers=user.headers)
    assert fetched.json() == body
    mine = await client.get(f"/api/users/{user.id}/orders", headers=user.headers)
    assert [o["orderId"] for o in mine.json()] == [body["orderId"]]
    assert not any((await audit_database(shop.db)).values())


async def test_single_product_form_of_the_original_draft(shop, client):
    user = await make_user(shop, balance=10_000)
    product = await make_product(shop, price=2_500, stock=3)
    response = await order(client, user, productId=product, quantity=2)
    assert response.status_code == 201
    assert response.json()["items"][0]["quantity"] == 2
    assert response.json()["paidAmount"] == 5_000


@pytest.mark.parametrize("coupon, subtotal, discount", [
    ({"discount_type": "FIXED", "value": 3_000}, 20_000, 3_000),
    ({"discount_type": "FIXED", "value": 50_000}, 20_000, 20_000),
    ({"discount_type": "PERCENT", "value": 15}, 20_000, 3_000),
    ({"discount_type": "PERCENT", "value": 15, "max_discount": 1_000}, 20_000, 1_000),
    ({"discount_type": "PERCENT", "value": 33}, 10_001, 3_300),
])
async def test_coupon_discounts(shop, client, coupon, subtotal, discount):
    user = await make_user(shop, balance=100_000)
    product = await make_product(shop, price=subtotal, stock=1)
    await make_coupon(shop, code="DEAL", **coupon)
    assert (await client.post("/api/coupons/claim", headers=user.headers,
                              json={"userId": user.id, "couponCode": "DEAL"})).status_code == 200
    response = await order(client, user, [(product, 1)], coupon="DEAL")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["totalPrice"], body["discountAmount"], body["paidAmount"], body["couponCode"]
            ) == (subtotal, discount, subtotal - discount, "DEAL")
    held = (await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)).json()
    assert held[0]["status"] == "USED" and held[0]["orderId"] == body["orderId"]
    assert not any((await audit_database(shop.db)).values())


class TestErrorPathsChangeNothing:
    async def check(self, shop, client, user, products, response, status, code):
        before = self.before
        error = assert_error(response, status, code)
        assert await snapshot(shop, client, user, products) == before
        return error

    @pytest.fixture
    async def setup(self, shop, client):
        self.user = await make_user(shop, balance=10_000)
        self.cheap = await make_product(shop, price=1_000, stock=5, name="Cheap thing")
        self.scarce = await make_product(shop, price=500, stock=1, name="Scarce thing")
        await make_coupon(shop, code="MIN50K", min_order=50_000)
        await make_coupon(shop, code="NOTHELD")
        await make_coupon(shop, code="SHORTLIVED", valid_days=1)
        for code in ("MIN50K", "SHORTLIVED"):
            await client.post("/api/coupons/claim", headers=self.user.headers,
                              json={"userId": self.user.id, "couponCode": code})
        self.products = [self.cheap, self.scarce]
        self.before = await snapshot(shop, client, self.user, self.products)

    async def test_out_of_stock_names_the_product(self, shop, client, setup):
        error = await self.check(shop, client, self.user, self.products,
                                 await order(client, self.user, [(self.cheap, 1),
                                                                 (self.scarce, 2)]),
                                 409, "OUT_OF_STOCK")
        assert "Scarce thing" in error["message"]

    async def test_unknown_product(self, shop, client, setup):
        await self.check(shop, client, self.user, self.products,
                         await order(client, self.user, [(self.cheap, 1), (999_999, 1)]),
                         404, "PRODUCT_NOT_FOUND")

    async def test_inactive_product(self, shop, client, setup):
        admin = await make_admin(shop)
        hidden = await make_product(shop, price=10, stock=5)
        await client.patch(f"/api/admin/products/{hidden}", headers=admin.headers,
                           json={"active": False})
        self.before = await snapshot(shop, client, self.user, self.products)
        await self.check(shop, client, self.user, self.products,
                         await order(client, self.user, [(self.cheap, 1), (hidden, 1)]),
                         404, "PRODUCT_NOT_FOUND")

    async def test_insufficient_balance(self, shop, client, setup):
        rich = await make_product(shop, price=20_000, stock=1)
        self.before = await snapshot(shop, client, self.user, self.products)
        await self.check(shop, client, self.user, self.products,
                         await order(client, self.user, [(self.cheap, 1), (rich, 1)]),
                         402, "INSUFFICIENT_BALANCE")

    @pytest.mark.parametrize("code, why", [("NOTHELD", "not hold"), ("NOSUCH", "not hold"),
                                           ("MIN50K", "at least"), ("SHORTLIVED", "expired")])
    async def test_unusable_coupon(self, shop, client, setup, code, why):
        if code == "SHORTLIVED":
            shop.clock.advance(timedelta(days=2))
        error = await self.check(shop, client, self.user, self.products,
                                 await order(client, self.user, [(self.cheap, 1)], coupon=code),
                                 400, "COUPON_NOT_USABLE")
        assert why in error["message"]

    async def test_used_coupon(self, shop, client, setup):
        await make_coupon(shop, code="ONCE")
        await client.post("/api/coupons/claim", headers=self.user.headers,
                          json={"userId": self.user.id, "couponCode": "ONCE"})
        assert (await order(client, self.user, [(self.cheap, 1)], coupon="ONCE")
                ).status_code == 201
        self.before = await snapshot(shop, client, self.user, self.products)
        await self.check(shop, client, self.user, self.products,
                         await order(client, self.user, [(self.cheap, 1)], coupon="ONCE"),
                         400, "COUPON_NOT_USABLE")

    @BEFORE_THE_DATABASE
    @pytest.mark.parametrize("body", [
        {"items": []}, {"items": [{"productId": 1, "quantity": 0}]},
        {"items": [{"productId": 1, "quantity": 1001}]},
        {"items": [{"productId": 1, "quantity": 1000}] * 3},  # merged, 3,000 of one product
        {"items": [{"productId": 1, "quantity": 600}, {"productId": 2, "quantity": 1},
                   {"productId": 1, "quantity": 401}]},
        {"items": [{"productId": 1, "quantity": 1}] * 51},
        {"items": [{"productId": "1", "quantity": 1}]},
        {"items": [{"productId": 1}]}, {}, {"productId": 1},
        {"items": [{"productId": 1, "quantity": 1}], "productId": 1, "quantity": 1},
        {"items": "all of them"}, {"items": [{"productId": 1, "quantity": 1}], "couponCode": ""},
    ])
    async def test_invalid_body(self, shop, client, setup, body):
        response = await client.post("/api/orders", headers=self.user.headers,
                                     json={"userId": self.user.id, **body})
        await self.check(shop, client, self.user, self.products, response, 400,
                         "INVALID_REQUEST")

    async def test_for_another_user(self, shop, client, setup):
        other = await make_user(shop)
        response = await client.post("/api/orders", headers=other.headers, json={
            "userId": self.user.id, "items": [{"productId": self.cheap, "quantity": 1}]})
        await self.check(shop, client, self.user, self.products, response, 403, "FORBIDDEN")


async def test_cancel_refunds_restocks_returns_coupon_and_records_event(shop, client):
    user = await make_user(shop, balance=50_000)
    product = await make_product(shop, price=10_000, stock=5)
    await make_coupon(shop, code="BACK", value=2_000)
    await client.post("/api/coupons/claim", headers=user.headers,
                      json={"userId": user.id, "couponCode": "BACK"})
    placed = (await order(client, user, [(product, 2)], coupon="BACK")).json()
    cancelled = await client.post(f"/api/orders/{placed['orderId']}/cancel",
                                  headers=user.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "CANCELLED" and body["cancelledAt"].endswith("Z")
    assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
            ).json()["balance"] == 50_000
    assert (await client.get(f"/api/products/{product}")).json()["stock"] == 5
    held = (await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)).json()
    assert held[0]["status"] == "AVAILABLE" and held[0]["orderId"] is None
    history = (await client.get(f"/api/balance/{user.id}/history", headers=user.headers)).json()
    assert (history[0]["type"], history[0]["amount"]) == ("REFUND", 18_000)
    assert (await client.get("/api/products/top")).json() == []
    again = await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    assert_error(again, 409, "ORDER_NOT_CANCELLABLE")
    async with shop.db.uow(write=False) as uow:
        types = (await uow.conn.execute(select(outbox.c.event_type).order_by(outbox.c.id))
                 ).scalars().all()
    assert types == ["order.completed", "order.cancelled"]
    assert not any((await audit_database(shop.db)).values())


async def test_cancelled_expired_coupon_comes_back_expired(shop, client):
    user = await make_user(shop, balance=50_000)
    product = await make_product(shop, price=10_000, stock=5)
    await make_coupon(shop, code="BRIEF", valid_days=1)
    await client.post("/api/coupons/claim", headers=user.headers,
                      json={"userId": user.id, "couponCode": "BRIEF"})
    placed = (await order(client, user, [(product, 1)], coupon="BRIEF")).json()
    shop.clock.advance(timedelta(days=2))
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    held = (await client.get(f"/api/users/{user.id}/coupons", headers=user.headers)).json()
    assert held[0]["status"] == "EXPIRED"


async def test_orders_are_private_and_admins_see_all(shop, client):
    alice, bob, admin = await make_user(shop, balance=9_000), await make_user(shop), \
        await make_admin(shop)
    product = await make_product(shop, price=1_000, stock=9)
    placed = (await order(client, alice, [(product, 1)])).json()
    assert_error(await client.get(f"/api/orders/{placed['orderId']}", headers=bob.headers),
                 404, "ORDER_NOT_FOUND")
    assert_error(await client.post(f"/api/orders/{placed['orderId']}/cancel",
                                   headers=bob.headers), 404, "ORDER_NOT_FOUND")
    assert_error(await client.get(f"/api/users/{alice.id}/orders", headers=bob.headers),
                 403, "FORBIDDEN")
    assert (await client.get(f"/api/orders/{placed['orderId']}", headers=admin.headers)
            ).status_code == 200
    second = (await order(client, alice, [(product, 2)])).json()
    cancelled = await client.post(f"/api/orders/{second['orderId']}/cancel",
                                  headers=admin.headers)
    assert cancelled.json()["status"] == "CANCELLED"
    listing = await client.get("/api/admin/orders?status=PAID", headers=admin.headers)
    assert [o["orderId"] for o in listing.json()] == [placed["orderId"]]
    by_user = await client.get(f"/api/admin/orders?userId={alice.id}", headers=admin.headers)
    assert by_user.headers["X-Total-Count"] == "2"
    assert [o["orderId"] for o in by_user.json()] == [second["orderId"], placed["orderId"]]
    assert_error(await client.get("/api/admin/orders?status=LOST", headers=admin.headers),
                 400, "INVALID_REQUEST")
    assert_error(await client.get("/api/admin/orders", headers=alice.headers), 403, "FORBIDDEN")
    assert_error(await client.get("/api/orders/77777", headers=alice.headers),
                 404, "ORDER_NOT_FOUND")


async def test_idempotent_order_and_cancel(shop, client):
    user = await make_user(shop, balance=9_000)
    product = await make_product(shop, price=1_000, stock=9)
    first = await order(client, user, [(product, 2)], key="cart-1")
    again = await order(client, user, [(product, 2)], key="cart-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert_error(await order(client, user, [(product, 3)], key="cart-1"),
                 422, "IDEMPOTENCY_KEY_REUSED")
    assert (await client.get(f"/api/products/{product}")).json()["stock"] == 7
    order_id = first.json()["orderId"]
    headers = {**user.headers, "Idempotency-Key": "undo-1"}
    c1 = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    c2 = await client.post(f"/api/orders/{order_id}/cancel", headers=headers)
    assert c1.status_code == c2.status_code == 200 and c1.json() == c2.json()
    assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
            ).json()["balance"] == 9_000
    assert not any((await audit_database(shop.db)).values())


async def test_a_key_keeps_its_first_answer_after_the_shop_changed(shop, client):
    """A repeat is answered by its key whatever the order would meet now: sold out since,
    a 201 is replayed, not refused; a refusal stays the key's answer once stock is back
    (on PostgreSQL the order's one statement finds the key, elsewhere the look first)."""
    user = await make_user(shop, balance=50_000)
    admin = await make_admin(shop)
    product = await make_product(shop, price=1_000, stock=3)
    first = await order(client, user, [(product, 3)], key="sold-out-since")
    assert first.status_code == 201, first.text
    again = await order(client, user, [(product, 3)], key="sold-out-since")
    assert (again.status_code, again.json()) == (201, first.json())
    assert_error(await order(client, user, [(product, 1)], key="sold-out-since"),
                 422, "IDEMPOTENCY_KEY_REUSED")
    refused = await order(client, user, [(product, 1)], key="while-sold-out")
    assert_error(refused, 409, "OUT_OF_STOCK")
    restocked = await client.post(f"/api/admin/products/{product}/stock",
                                  headers=admin.headers, json={"delta": 5})
    assert restocked.status_code == 200, restocked.text
    replayed = await order(client, user, [(product, 1)], key="while-sold-out")
    assert (replayed.status_code, replayed.json()) == (409, refused.json())
    assert (await client.get(f"/api/products/{product}")).json()["stock"] == 5
    assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
            ).json()["balance"] == 47_000
    assert not any((await audit_database(shop.db)).values())


async def test_one_key_sent_many_times_at_once_places_one_order(shop, client):
    """A double-clicked checkout: 20 requests with one key at once (on PostgreSQL the
    function writes the key in the order's own statement, elsewhere the key row is written
    first): one order, and every request answered with it."""
    user = await make_user(shop, balance=100_000)
    product = await make_product(shop, price=1_000, stock=50)
    answers = await asyncio.gather(*(order(client, user, [(product, 2)], key="double-click")
                                     for _ in range(20)))
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers]
    assert all(a.json() == answers[0].json() for a in answers)
    assert (await client.get(f"/api/products/{product}")).json()["stock"] == 48
    assert (await client.get(f"/api/balance/{user.id}", headers=user.headers)
            ).json()["balance"] == 98_000
    async with shop.db.uow(write=False) as uow:
        assert (await uow.conn.execute(select(func.count()).select_from(orders))
                ).scalar_one() == 1
    # A refusal is the key's answer too, replayed the same way.
    refused = await asyncio.gather(*(order(client, user, [(product, 49)], key="too-many")
                                     for _ in range(10)))
    assert {(a.status_code, a.json()["code"]) for a in refused} == {(409, "OUT_OF_STOCK")}
    assert not any((await audit_database(shop.db)).values())


async def test_sales_show_in_top_sellers_and_cancel_takes_them_off(shop, client):
    user = await make_user(shop, balance=90_000)
    a, b = await make_product(shop, price=100, stock=50), await make_product(shop, price=100,
                                                                           stock=50)
    await order(client, user, [(a, 3), (b, 5)])
    placed = (await order(client, user, [(a, 4)])).json()
    top = [(t["productId"], t["soldQuantity"]) for t in
           (await client.get("/api/products/top")).json()]
    assert top == [(a, 7), (b, 5)]
    await client.post(f"/api/orders/{placed['orderId']}/cancel", headers=user.headers)
    top = [(t["productId"], t["soldQuantity"]) for t in
           (await client.get("/api/products/top")).json()]
    assert top == [(b, 5), (a, 3)]
    popular = (await client.get("/api/products?sort=popular")).json()
    assert [p["id"] for p in popular] == [b, a]


async def test_repeated_lines_merging_to_exactly_the_limit_are_one_line(shop, client):
    user = await make_user(shop, balance=1_000_000)
    product = await make_product(shop, price=100, stock=2_000)
    response = await order(client, user, [(product, 600), (product, 400)])
    assert response.status_code == 201, response.text
    assert [(i["productId"], i["quantity"]) for i in response.json()["items"]] == [
        (product, 1_000)]


async def quote(client, user, items, coupon=None):
    body = {"userId": user.id, "items": [{"productId": p, "quantity": q} for p, q in items]}
    if coupon is not None:
        body["couponCode"] = coupon
    return await client.post("/api/orders/quote", headers=user.headers, json=body)


async def test_a_quote_is_what_the_order_then_charges_and_holds_nothing(shop, client):
    user = await make_user(shop, balance=100_000)
    a = await make_product(shop, price=12_000, stock=10, name="Tea")
    b = await make_product(shop, price=30_000, stock=2, name="Pot")
    await make_coupon(shop, code="TEN", discount_type="PERCENT", value=10, max_discount=5_000)
    assert (await client.post("/api/coupons/claim", headers=user.headers,
                              json={"userId": user.id, "couponCode": "TEN"})).status_code == 200
    before = await snapshot(shop, client, user, [a, b])
    quoted = await quote(client, user, [(b, 1), (a, 2), (a, 1)], coupon="ten")
    assert quoted.status_code == 200, quoted.text
    assert quoted.json() == {
        "items": [{"productId": a, "name": "Tea", "unitPrice": 12_000, "quantity": 3,
                   "lineTotal": 36_000},
                  {"productId": b, "name": "Pot", "unitPrice": 30_000, "quantity": 1,
                   "lineTotal": 30_000}],
        "totalPrice": 66_000, "discountAmount": 5_000, "paidAmount": 61_000,
        "couponCode": "TEN", "balance": 100_000}
    assert await snapshot(shop, client, user, [a, b]) == before  # nothing held or changed
    placed = (await order(client, user, [(b, 1), (a, 2), (a, 1)], coupon="TEN")).json()
    assert {k: placed[k] for k in ("items", "totalPrice", "discountAmount", "paidAmount",
                                   "couponCode")} == {
        k: v for k, v in quoted.json().items() if k != "balance"}


async def test_a_quote_refuses_like_the_order_but_shows_a_short_balance(shop, client):
    user = await make_user(shop, balance=1_000)
    product = await make_product(shop, price=5_000, stock=3, name="Lamp")
    short = await quote(client, user, [(product, 1)])
    assert short.status_code == 200
    assert (short.json()["paidAmount"], short.json()["balance"]) == (5_000, 1_000)
    assert_error(await order(client, user, [(product, 1)]), 402, "INSUFFICIENT_BALANCE")
    rich = await make_user(shop, balance=1_000_000)
    for items, status, code in (([(product, 4)], 409, "OUT_OF_STOCK"),
                                ([(987_654, 1)], 404, "PRODUCT_NOT_FOUND")):
        assert_error(await quote(client, user, items), status, code)
        assert_error(await order(client, rich, items), status, code)
    assert_error(await quote(client, user, [(product, 1)], coupon="NOPE"), 400,
                 "COUPON_NOT_USABLE")
    other = await make_user(shop)
    assert_error(await client.post("/api/orders/quote", headers=other.headers, json={
        "userId": user.id, "items": [{"productId": product, "quantity": 1}]}), 403, "FORBIDDEN")
    assert_error(await client.post("/api/orders/quote", headers=user.headers, json={
        "userId": user.id, "items": []}), 400, "INVALID_REQUEST")


async def test_daily_sales_are_counted_by_the_shops_calendar_day(shop, client):
    from datetime import UTC, datetime

    admin = await make_admin(shop)
    user = await make_user(shop, balance=1_000_000)
    product = await make_product(shop, price=1_000, stock=100)
    # 2026-11-29 23:30 UTC is 2026-11-30 08:30 in Seoul; 14:59 UTC is 23:59 the day before.
    for moment, quantity in ((datetime(2026, 11, 29, 14, 59, tzinfo=UTC), 1),
                             (datetime(2026, 11, 29, 23, 30, tzinfo=UTC), 2),
                             (datetime(2026, 11, 30, 1, 0, tzinfo=UTC), 3),
                             (datetime(2026, 11, 30, 2, 0, tzinfo=UTC), 4)):
        shop.clock.freeze(moment)
        placed = await order(client, user, [(product, quantity)])
        assert placed.status_code == 201
    cancelled = placed.json()["orderId"]
    assert (await client.post(f"/api/orders/{cancelled}/cancel",
                              headers=user.headers)).status_code == 200
    shop.clock.freeze(datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    sales = await client.get("/api/admin/sales?days=3", headers=admin.headers)
    assert sales.status_code == 200
    assert sales.json() == [
        {"day": "2026-11-28", "orders": 0, "revenue": 0},
        {"day": "2026-11-29", "orders": 1, "revenue": 1_000},
        {"day": "2026-11-30", "orders": 2, "revenue": 5_000},  # the cancelled one left out
    ]
    assert_error(await client.get("/api/admin/sales?days=0", headers=admin.headers),
                 400, "INVALID_REQUEST")
