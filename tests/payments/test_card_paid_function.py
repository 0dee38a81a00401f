"""PostgreSQL's `shop_card_order_confirming` and `shop_card_order_paid` (orders/card_*.sql):
a confirm begun, and its plain approval applied, in one statement each write what the
payment machine's moves write and answer alike, and each guard refuses and leaves nothing
(the usual settling then decides).

The matrix of card orders runs twice against a real sandbox gateway, once with the
one-statement approval and once without, on fresh databases with the clock frozen; every
row of every table and every answer are compared (keys, the gateway's ids and times and
event ids apart: they are random or the gateway's)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from ecommerce.catalog.models import products
from ecommerce.events.models import outbox
from ecommerce.orders import repository
from ecommerce.payments.models import payments
from ecommerce.ranking.models import product_sales_daily
from ecommerce.wallet.models import wallets
from tests.factories import make_product, make_user
from tests.payments.checkout import APPROVE, DECLINE, authorise, dev_pg

# (buyer, [(product, quantity)], coupon, balance part, card): each placed by card and
# confirmed once.
MATRIX = [
    ("rich", [("pen", 1)], None, 0, "approve"),
    ("rich", [("pen", 2), ("ink", 1), ("pad", 3)], None, 0, "approve"),  # three lines
    ("other", [("pen", 1), ("pad", 1)], "FLAT", 500, "approve"),  # coupon, balance part
    ("other", [("ink", 1)], None, 0, "decline"),  # every hold given back (no one call)
    ("rich", [("pad", 1)], "PCT", 0, "approve"),  # pad sold again the same day
    ("poor", [("pen", 1)], None, 400, "approve"),  # the balance part is all it had
]


async def _run_matrix(database_url: str, sandbox: str, one_call: bool) -> dict[str, list]:
    from ecommerce.app import create_app
    from ecommerce.coupons import usecases as coupon_usecases
    from ecommerce.models import metadata
    from ecommerce.orders.schemas import OrderIn
    from ecommerce.payments.schemas import ConfirmIn
    from ecommerce.platform.principal import Principal
    from ecommerce.standins.gateway import DEFAULT_SECRET_KEY
    from tests.conftest import make_settings
    from tests.factories import make_coupon as add_coupon

    app = create_app(make_settings(database_url, payment_gateway_url=sandbox,
                                   payment_secret_key=DEFAULT_SECRET_KEY))
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    answers: list[dict] = []
    async with app.router.lifespan_context(app):
        shop = type("Shop", (), {})()
        shop.ctx, shop.db = app.state.ctx, app.state.ctx.db
        shop.clock = app.state.ctx.clock
        shop.clock.freeze(now)
        orders = shop.ctx.orders
        assert orders.purpose.in_one_call, "the function is installed: chosen at start"
        orders.purpose.in_one_call = one_call
        users = {name: await make_user(shop, balance=balance, username=name)
                 for name, balance in (("rich", 500_000), ("poor", 400), ("other", 90_000))}
        items = {name: await make_product(shop, price=price, stock=stock, name=name)
                 for name, price, stock in (("pen", 1_200, 20), ("ink", 3_500, 3),
                                            ("pad", 800, 10))}
        await add_coupon(shop, code="FLAT", value=1_000)
        await add_coupon(shop, code="PCT", discount_type="PERCENT", value=15, max_discount=500)
        for name, code in (("other", "FLAT"), ("rich", "PCT")):
            await coupon_usecases.claim_coupon(shop.db, shop.ctx.coupons.gate,
                                               shop.ctx.coupons.issuer, users[name].id, code, now)
        for buyer, lines, code, balance_part, card in MATRIX:
            caller = Principal(users[buyer].id, "CUSTOMER")
            status, placed = await orders.place(caller, OrderIn(
                user_id=users[buyer].id, coupon_code=code, payment_method="CARD",
                balance_amount=balance_part,
                items=[{"product_id": items[p], "quantity": q} for p, q in lines]), None)
            assert status == 201, placed
            amount = placed["payment"]["amount"]
            key, _ = await authorise(sandbox, amount,
                                     card=DECLINE if card == "decline" else APPROVE,
                                     order_id=placed["payment"]["pgOrderId"])
            try:
                status, view = await orders.confirm_payment(
                    caller, placed["orderId"], ConfirmIn(payment_key=key, amount=amount))
                answers.append({"answered": status, **_answer(view)})
            except Exception as error:  # noqa: BLE001 - the refusal is part of the outcome
                answers.append({"refused": getattr(error, "code", type(error).__name__)})
        async with shop.db.uow(write=False) as uow:
            found = {table.name: (await uow.conn.execute(
                select(table).order_by(*table.primary_key.columns))).all()
                for table in metadata.sorted_tables}
    rows: dict[str, list] = {"answers": answers}
    for name, table_rows in found.items():
        rows[name] = [_comparable(name, dict(row._mapping)) for row in table_rows]
    return rows


def _answer(view: dict) -> dict:
    payment = dict(view["payment"])
    payment.pop("paymentKey"), payment.pop("pgOrderId")  # the gateway's, random
    return {**view, "payment": payment}


def _comparable(table: str, row: dict) -> dict:
    """A row as both runs must have written it: random values and the gateway's own
    times left out, the outbox payload parsed."""
    row.pop("password_hash", None)  # salted
    for name in ("pg_order_id", "payment_key", "approved_at"):  # the gateway's
        row.pop(name, None)
    if table == "consumer_cursors":
        row.pop("updated_at")  # when the migration ran
    if table == "outbox":
        import orjson

        row["payload"] = {k: v for k, v in orjson.loads(row.pop("payload")).items()
                          if k != "eventId"}
        row.pop("event_id")
    return row


async def test_the_function_writes_and_answers_what_the_machines_moves_do(db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_card_order_paid is PostgreSQL's")
    from ecommerce.platform.migrate import upgrade
    from tests.backends import POSTGRES_URL
    from tests.scratch import create_scratch_database, drop_scratch_database

    written = {}
    with dev_pg() as sandbox:
        for one_call in (True, False):
            url = await create_scratch_database(POSTGRES_URL, "ecommerce_test_card_paid")
            try:
                upgrade(url)
                written[one_call] = await _run_matrix(url, sandbox, one_call)
            finally:
                await drop_scratch_database(POSTGRES_URL, url)
    fast, usual = written[True], written[False]
    assert [a.get("answered", a.get("refused")) for a in fast["answers"]] == [
        200, 200, 200, "PAYMENT_DECLINED", 200, 200]
    assert [o["status"] for o in fast["orders"]] == ["PAID"] * 3 + ["PAYMENT_FAILED"] + [
        "PAID"] * 2
    assert len(fast["outbox"]) == 6 and len(fast["product_sales_daily"]) == 3
    for table in usual:
        assert fast[table] == usual[table], table


@pytest.fixture
def settings_overrides() -> dict:
    # Card orders are placed (a gateway is configured) but never confirmed here.
    from ecommerce.standins.gateway import DEFAULT_SECRET_KEY

    return {"payment_gateway_url": "http://127.0.0.1:9", "payment_secret_key": DEFAULT_SECRET_KEY,
            "run_payment_jobs": False}


async def _state(shop) -> dict:  # noqa: ANN001
    async with shop.db.uow(write=False) as uow:
        conn = uow.conn
        return {
            "payments": (await conn.execute(select(payments.c.id, payments.c.status))).all(),
            "wallets": (await conn.execute(select(wallets).order_by(wallets.c.user_id))).all(),
            "products": (await conn.execute(select(products.c.id, products.c.held,
                                                   products.c.stock))).all(),
            "sales": (await conn.execute(select(product_sales_daily))).all(),
            "outbox": (await conn.execute(select(func.count()).select_from(outbox))
                       ).scalar_one()}


async def test_each_guard_refuses_and_changes_nothing(shop, client, db_kind):
    """Another request moved the payment first, or the order no longer holds: refused,
    nothing written (the caller then settles the usual way)."""
    if db_kind != "postgres":
        pytest.skip("shop_card_order_paid is PostgreSQL's")
    user = await make_user(shop, balance=10_000)
    pen = await make_product(shop, price=1_000, stock=5, name="Pen")
    placed = await client.post("/api/orders", headers=user.headers, json={
        "userId": user.id, "paymentMethod": "CARD", "items": [{"productId": pen,
                                                               "quantity": 2}]})
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["orderId"]
    async with shop.db.uow(write=False) as uow:
        payment_id = (await uow.conn.execute(select(payments.c.id).where(
            payments.c.order_id == order_id))).scalar_one()
    now = datetime.now(UTC).replace(tzinfo=None)
    values = {"payment_id": payment_id, "order_id": order_id, "user_id": user.id,
              "payment_key": "tsb_key", "approved_at": now, "now": now, "day": now.date(),
              "products": [pen], "quantities": [2],
              "event_id": "00000000-0000-4000-8000-000000000002", "event": "{}"}

    async def refused(moved: dict[str, str]) -> str:
        async with shop.db.uow() as uow:
            await uow.conn.execute(update(payments).where(payments.c.id == payment_id)
                                   .values(status=moved["payment"]))
            await uow.conn.execute(update(repository.orders).where(
                repository.orders.c.id == order_id).values(status=moved["order"]))
        before = await _state(shop)
        with pytest.raises(repository.Refused) as refusal:
            async with shop.db.uow(one_statement=True) as uow:
                await repository.card_paid_in_one_call(uow.conn, values)
        assert await _state(shop) == before
        return refusal.value.reason

    assert await refused({"payment": "FAILED", "order": "PAYMENT_UNKNOWN"}) == "PAYMENT_MOVED"
    assert await refused({"payment": "DONE", "order": "PAID"}) == "PAYMENT_MOVED"
    assert await refused({"payment": "CONFIRMING", "order": "EXPIRED"}) == (
        "ORDER_NOT_HOLDING")
    # Beginning: a payment no longer READY is not moved (another request was first); an
    # order not PAYMENT_PENDING beside a READY payment is refused, the payment's move undone.
    confirming = {"payment_id": payment_id, "order_id": order_id, "payment_key": "tsb_key",
                  "now": now}
    async with shop.db.uow(one_statement=True) as uow:
        assert await repository.card_confirming_in_one_call(uow.conn, confirming) is False
    async with shop.db.uow() as uow:
        await uow.conn.execute(update(payments).where(payments.c.id == payment_id)
                               .values(status="READY"))
    with pytest.raises(repository.Refused) as refusal:
        async with shop.db.uow(one_statement=True) as uow:
            await repository.card_confirming_in_one_call(uow.conn, confirming)
    assert refusal.value.reason == "ORDER_NOT_PENDING"
    assert (await _state(shop))["payments"] == [(payment_id, "READY")]
    async with shop.db.uow() as uow:
        await uow.conn.execute(update(repository.orders).where(
            repository.orders.c.id == order_id).values(status="PAYMENT_PENDING"))
    async with shop.db.uow(one_statement=True) as uow:
        assert await repository.card_confirming_in_one_call(uow.conn, confirming) is True
    async with shop.db.uow(write=False) as uow:
        assert (await uow.conn.execute(select(repository.orders.c.status).where(
            repository.orders.c.id == order_id))).scalar_one() == "PAYMENT_UNKNOWN"
    # The guards all hold: it is applied.
    async with shop.db.uow(one_statement=True) as uow:
        await repository.card_paid_in_one_call(uow.conn, values)
    after = await _state(shop)
    assert after["payments"] == [(payment_id, "DONE")] and after["outbox"] == 1
    assert [(p.held, p.stock) for p in after["products"]] == [(0, 3)]
    assert [(s.product_id, s.quantity) for s in after["sales"]] == [(pen, 2)]


async def test_the_database_holds_the_functions_in_card_sql_files(shop, db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_card_order_* are PostgreSQL's")
    from sqlalchemy import text

    async with shop.db.uow(write=False) as uow:
        source = dict((await uow.conn.execute(text(
            "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'shop_card_order_%'"))
        ).all())
    assert source == {"shop_card_order_paid": repository.CARD_PAID_SQL.split("$$")[1],
                      "shop_card_order_confirming":
                      repository.CARD_CONFIRMING_SQL.split("$$")[1]}
