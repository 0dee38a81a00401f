"""PostgreSQL's `shop_place_order` (migration 0006): each guard refuses and leaves nothing.

The API tests reach the function through every order on PostgreSQL, but not the races it
guards against (a price, a coupon, the balance or the stock changing between the quote and
the writes). Here the function is called with inputs that have gone stale in each of those
ways, and everything an order may change is read back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import select, update

from ecommerce.catalog.models import products
from ecommerce.coupons.models import coupons, user_coupons
from ecommerce.events.models import outbox
from ecommerce.orders import repository
from tests.factories import make_coupon, make_product, make_user
from tests.orders.test_orders_api import snapshot


def _call(user_id: int, lines: list[tuple[int, int, int, str]], *, total: int,
          discount: int = 0, held: tuple[int, int, str] | None = None) -> dict:
    now = datetime.now(UTC).replace(tzinfo=None)
    return {"user_id": user_id, "now": now, "day": now.date(),
            "products": [p for p, _, _, _ in lines], "quantities": [q for _, q, _, _ in lines],
            "prices": [price for _, _, price, _ in lines], "names": [n for _, _, _, n in lines],
            "total": total, "discount": discount,
            "user_coupon_id": held[0] if held else None,
            "coupon_id": held[1] if held else None, "coupon_code": held[2] if held else None,
            "event_id": "00000000-0000-4000-8000-000000000001",
            "event": orjson.dumps({"eventId": "00000000-0000-4000-8000-000000000001",
                                   "orderId": 0, "paidAmount": total - discount}).decode()}


async def _refused(shop, values: dict) -> repository.Refused:  # noqa: ANN001
    with pytest.raises(repository.Refused) as refused:
        async with shop.db.uow() as uow:
            await repository.place_in_one_call(uow.conn, values)
    return refused.value


async def test_each_guard_refuses_and_changes_nothing(shop, client, db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_place_order is PostgreSQL's")
    user = await make_user(shop, balance=10_000)
    pen = await make_product(shop, price=1_000, stock=5, name="Pen")
    ink = await make_product(shop, price=2_000, stock=1, name="Ink")
    await make_coupon(shop, code="TENOFF", discount_type="FIXED", value=500)
    claimed = await client.post("/api/coupons/claim", headers=user.headers,
                                json={"userId": user.id, "couponCode": "TENOFF"})
    assert claimed.status_code == 200, claimed.text
    async with shop.db.uow(write=False) as uow:
        coupon_id = (await uow.conn.execute(select(coupons.c.id))).scalar_one()
    held = (claimed.json()["userCouponId"], coupon_id, "TENOFF")
    before = await snapshot(shop, client, user, [pen, ink])

    # Two lines, the second short: the first line's stock and everything before it undone.
    short = await _refused(shop, _call(user.id, [(pen, 1, 1_000, "Pen"), (ink, 2, 2_000, "Ink")],
                                       total=5_000, discount=500, held=held))
    assert short.reason == "OUT_OF_STOCK"
    assert orjson.loads(short.detail) == [ink, "Ink", 1, 2]
    # The price the service quoted is no longer the price: the service runs it again.
    changed = await _refused(shop, _call(user.id, [(pen, 1, 900, "Pen")], total=900))
    assert (changed.reason, changed.detail) == ("PRICE_CHANGED", str(pen))
    # More than the balance holds.
    broke = await _refused(shop, _call(user.id, [(pen, 5, 1_000, "Pen")], total=50_000))
    assert broke.reason == "INSUFFICIENT_BALANCE"
    assert await snapshot(shop, client, user, [pen, ink]) == before

    # The coupon used (by another order) since the service checked it.
    async with shop.db.uow() as uow:
        await uow.conn.execute(update(user_coupons).values(status="USED"))
    used = await _refused(shop, _call(user.id, [(pen, 1, 1_000, "Pen")], total=1_000,
                                      discount=500, held=held))
    assert used.reason == "COUPON_USED"
    async with shop.db.uow() as uow:
        await uow.conn.execute(update(user_coupons).values(status="AVAILABLE"))
        # ... or expired.
        await uow.conn.execute(update(user_coupons).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    expired = await _refused(shop, _call(user.id, [(pen, 1, 1_000, "Pen")], total=1_000,
                                         discount=500, held=held))
    assert expired.reason == "COUPON_USED"
    # A product taken off sale since the quote.
    async with shop.db.uow() as uow:
        await uow.conn.execute(update(products).where(products.c.id == ink)
                               .values(active=False))
    gone = await _refused(shop, _call(user.id, [(ink, 1, 2_000, "Ink")], total=2_000))
    assert (gone.reason, gone.detail) == ("PRODUCT_NOT_FOUND", str(ink))
    after = await snapshot(shop, client, user, [pen])
    assert (after["balance"], after["stocks"], after["counts"]) == (
        before["balance"], before["stocks"][:1], before["counts"])

    # And when nothing is stale: the order, its event (with the new order id), the stock.
    async with shop.db.uow() as uow:
        order_id, stocks = await repository.place_in_one_call(
            uow.conn, _call(user.id, [(pen, 2, 1_000, "Pen")], total=2_000))
    assert stocks == [3]
    async with shop.db.uow(write=False) as uow:
        payload = (await uow.conn.execute(select(outbox.c.payload))).scalar_one()
    assert orjson.loads(payload)["orderId"] == order_id
    placed = await client.get(f"/api/orders/{order_id}", headers=user.headers)
    assert placed.json()["paidAmount"] == 2_000
