"""PostgreSQL's `shop_place_order` (orders/place_order.sql, the FunctionWriter): it writes
what the portable writer writes, and each guard refuses and leaves nothing.

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
          discount: int = 0, held: tuple[int, int, str] | None = None,
          card: tuple[int, int] | None = None) -> dict:
    """The function's arguments; `card`: a card order (unpaid orders limit, hold share)
    paid all by card."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return {"user_id": user_id, "now": now, "day": now.date(),
            "products": [p for p, _, _, _ in lines], "quantities": [q for _, q, _, _ in lines],
            "prices": [price for _, _, price, _ in lines], "names": [n for _, _, _, n in lines],
            "total": total, "discount": discount,
            "user_coupon_id": held[0] if held else None,
            "coupon_id": held[1] if held else None, "coupon_code": held[2] if held else None,
            "event_id": "00000000-0000-4000-8000-000000000001",
            "event": orjson.dumps({"eventId": "00000000-0000-4000-8000-000000000001",
                                   "orderId": 0, "paidAmount": total - discount}).decode(),
            "method": "BALANCE", "status": "PAID", "balance": total - discount, "card": 0,
            "unpaid_limit": None, "hold_percent": None, "key_user": None, "key": None,
            "fingerprint": None, "key_at": None, "answer_status": None, "answer": None
            } | ({} if card is None else {
            "event_id": None, "event": None, "method": "CARD", "status": "PAYMENT_PENDING",
            "balance": 0, "card": total - discount, "unpaid_limit": card[0],
            "hold_percent": card[1]})


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

    # By card: past the user's unpaid card orders, or past the share of a product's units
    # that unpaid orders may hold (3 of 5 is more than half, rounded up).
    limit = await _refused(shop, _call(user.id, [(pen, 1, 1_000, "Pen")], total=1_000,
                                       card=(0, 50)))
    assert (limit.reason, limit.detail) == ("UNPAID_ORDERS_LIMIT", "0")
    share = await _refused(shop, _call(user.id, [(pen, 4, 1_000, "Pen")], total=4_000,
                                       card=(3, 50)))
    assert orjson.loads(share.detail) == [pen, "Pen"] and share.reason == "STOCK_ON_HOLD"
    assert (await snapshot(shop, client, user, [pen]))["stocks"] == after["stocks"]

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


# One matrix of orders through shop_place_order and through the portable path, each on a
# fresh database of its own (so every id matches), and every row they write compared.
MATRIX = [  # (buyer, [(product, quantity)], coupon)
    ("rich", [("pen", 2)], None),
    ("rich", [("ink", 1), ("pen", 1), ("pad", 3)], "FLAT"),
    ("rich", [("pad", 2), ("pad", 1)], None),            # repeated lines, merged
    ("rich", [("pen", 1)], "PCT"),
    ("rich", [("pen", 1)], "FLAT"),                       # FLAT used already: refused
    ("rich", [("ink", 5)], None),                         # out of stock: refused
    ("poor", [("pad", 1)], None),                         # balance too low: refused
    ("poor", [("gone", 1)], None),                        # not on sale: refused
    ("other", [("pen", 1)], "MIN"),                       # below the coupon's minimum
    ("other", [("pen", 6), ("ink", 1)], "MIN"),           # the minimum reached
    ("other", [("ink", 1)], None),                        # the last ink: stock 0
    # By card (the balance part last): pending, holding everything, no sale nor event yet.
    ("rich", [("pad", 2)], None, 0),
    ("rich", [("pen", 2), ("pad", 1)], "PCT", 1_000),     # PCT used already: refused
    ("poor", [("pen", 1)], None, 300),                    # the balance part from 500
    ("poor", [("pen", 1)], None, 300),                    # 200 left: balance too low
    ("other", [("pen", 1)], None, 1_200),                 # all of it: a balance order
    ("other", [("pen", 1)], None, 1_300),                 # more than it costs: refused
    # Unpaid card orders are bounded (here at 2 per customer, half a product's units).
    ("other", [("bulk", 5)], None, 0),                    # 5 of 10 held: the share
    ("rich", [("bulk", 1)], None, 0),                     # a sixth held: refused
    ("rich", [("bulk", 1)], None),                        # paid at once: sold all the same
    ("other", [("box", 1)], None, 0),                     # other's second unpaid order
    ("other", [("box", 1)], None, 0),                     # a third: refused
    ("poor", [("bulk", 101)], None, 0),                   # more units than one may hold
]


async def _run_matrix(database_url: str, writer: str) -> dict[str, list[dict]]:
    from ecommerce.app import create_app
    from ecommerce.coupons import usecases as coupon_usecases
    from ecommerce.models import metadata
    from ecommerce.orders.schemas import OrderIn
    from ecommerce.orders.writer import FunctionWriter, PortableWriter
    from ecommerce.platform.principal import Principal
    from tests.conftest import make_settings
    from tests.factories import make_coupon as add_coupon

    app = create_app(make_settings(database_url, payment_gateway_url="http://127.0.0.1:9",
                                   payment_pending_per_user=2))
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    outcomes: list[dict] = []
    async with app.router.lifespan_context(app):
        shop = type("Shop", (), {})()
        shop.ctx, shop.db = app.state.ctx, app.state.ctx.db
        shop.clock = app.state.ctx.clock
        shop.clock.freeze(now)
        orders = shop.ctx.orders
        orders.writer = FunctionWriter() if writer == "function" else PortableWriter()
        users = {name: await make_user(shop, balance=balance, username=name)
                 for name, balance in (("rich", 500_000), ("poor", 500), ("other", 90_000))}
        items = {name: await make_product(shop, price=price, stock=stock, name=name)
                 for name, price, stock in (("pen", 1_200, 20), ("ink", 3_500, 3),
                                            ("pad", 800, 10), ("gone", 100, 5),
                                            ("bulk", 100, 10), ("box", 100, 100))}
        async with shop.db.uow() as uow:
            await uow.conn.execute(update(products).where(products.c.id == items["gone"])
                                   .values(active=False))
        await add_coupon(shop, code="FLAT", value=1_000)
        await add_coupon(shop, code="PCT", discount_type="PERCENT", value=15, max_discount=500)
        await add_coupon(shop, code="MIN", value=2_000, min_order=10_000)
        for name, code in (("rich", "FLAT"), ("rich", "PCT"), ("other", "MIN")):
            await coupon_usecases.claim_coupon(shop.db, shop.ctx.coupons.gate,
                                               shop.ctx.coupons.issuer, users[name].id, code, now)
        for n, (buyer, lines, code, *by_card) in enumerate(MATRIX):
            command = OrderIn(user_id=users[buyer].id, coupon_code=code,
                              items=[{"product_id": items[p], "quantity": q} for p, q in lines],
                              **({"payment_method": "CARD", "balance_amount": by_card[0]}
                                 if by_card else {}))
            # Every other order with an Idempotency-Key (written by the function itself on
            # that path), sent twice: the repeat replays the first answer.
            for key in ((f"matrix-{n}", f"matrix-{n}") if n % 2 else (None,)):
                try:
                    status, view = await orders.place(
                        Principal(users[buyer].id, "CUSTOMER"), command, key)
                    outcomes.append({"placed": view["orderId"], "paid": view["paidAmount"],
                                     "status": status} if "orderId" in view else
                                    {"refused": view["code"], "message": view["message"]})
                except Exception as error:  # noqa: BLE001 - the refusal is part of the outcome
                    outcomes.append({"refused": getattr(error, "code", type(error).__name__),
                                     "message": str(error)})
        async with shop.db.uow(write=False) as uow:
            found = {table.name: (await uow.conn.execute(
                select(table).order_by(*table.primary_key.columns))).all()
                for table in metadata.sorted_tables}
    # Order ids are numbered apart: a refusal may come before the order's insert on one
    # path and after it (a rolled-back insert still takes a number) on the other.
    number = {row.id: n for n, row in enumerate(found["orders"], start=1)}
    rows: dict[str, list[dict]] = {"outcomes": [
        {**o, "placed": number[o["placed"]]} if "placed" in o else o for o in outcomes]}
    for name, table_rows in found.items():
        rows[name] = [_comparable(name, dict(row._mapping), number) for row in table_rows]
    return rows


def _comparable(table: str, row: dict, number: dict[int, int]) -> dict:
    """A row as both paths must have written it: order ids by their order, event ids
    left out (random), and the outbox payload parsed (PostgreSQL re-serialises it)."""
    row.pop("password_hash", None)  # salted: differs every time
    row.pop("pg_order_id", None)  # random
    if table == "consumer_cursors":
        row.pop("updated_at")  # when the migration ran
    if table == "idempotency_keys":
        row.pop("created_at")  # the time it ran
        row.pop("id")  # numbered apart, as the orders are
        answer = orjson.loads(row.pop("response_body"))
        answer.pop("timestamp", None)  # a refusal's
        if "orderId" in answer:
            answer["orderId"] = number[answer["orderId"]]
            if answer.get("payment"):
                answer["payment"].pop("pgOrderId")
        row["answer"] = answer
    if table == "outbox":
        payload = orjson.loads(row.pop("payload"))
        payload.pop("eventId")
        payload["orderId"] = number[payload["orderId"]]
        row.pop("event_id")
        row["payload"] = payload
    for key in ("order_id", *(("id",) if table == "orders" else ())):
        if row.get(key) is not None:
            row[key] = number[row[key]]
    return row


async def test_the_function_writes_what_the_portable_path_writes(db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_place_order is PostgreSQL's")
    from ecommerce.platform.migrate import upgrade
    from tests.backends import POSTGRES_URL
    from tests.scratch import create_scratch_database, drop_scratch_database

    written = {}
    for writer in ("function", "portable"):
        url = await create_scratch_database(POSTGRES_URL, "ecommerce_test_matrix")
        try:
            upgrade(url)
            written[writer] = await _run_matrix(url, writer)
        finally:
            await drop_scratch_database(POSTGRES_URL, url)
    function, portable = written["function"], written["portable"]
    refusals = [o.get("refused") for o in function["outcomes"]]
    assert refusals.count(None) == 12 + 8, str(refusals)  # 8 of the 12 keyed, replayed
    assert len(function["idempotency_keys"]) == len(MATRIX) // 2
    assert {"STOCK_ON_HOLD", "TOO_MANY_UNPAID_ORDERS", "UNPAID_ORDER_TOO_LARGE"} <= set(
        refusals), refusals
    assert [o["status"] for o in function["orders"]].count("PAYMENT_PENDING") == 4
    assert len(function["payments"]) == 4
    for table in portable:
        assert function[table] == portable[table], table


async def test_the_database_holds_the_function_in_place_order_sql(shop, db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_place_order is PostgreSQL's")
    from sqlalchemy import text

    async with shop.db.uow(write=False) as uow:
        source = (await uow.conn.execute(text(
            "SELECT prosrc FROM pg_proc WHERE proname = 'shop_place_order'"))).scalar_one()
    body = repository.PLACE_ORDER_SQL.split("$$")[1]
    assert source == body  # a change to place_order.sql needs a migration that applies it
