"""The lean POST paths (a coupon claim, placing an order) and their FastAPI routes answer
every request alike: each request of a matrix (valid, each kind of invalid, each domain
error, database errors injected at the repository) is sent through the whole app (where
the lean path answers what it can) and straight to FastAPI, each time on the same fresh
state, and the two answers must be the same status and body, the timestamp aside."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from ecommerce.coupons.gate import LocalGate
from ecommerce.platform import metrics
from tests.conftest import wipe
from tests.factories import make_coupon, make_product, make_user

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
Setup = Callable[[Any], Awaitable[tuple[dict[str, int], dict[str, Any], dict[str, str]]]]


def _db_error(kind: type[Exception]) -> Exception:
    class Driver(Exception):
        sqlstate = "22021" if kind is DataError else "23505"

    return kind("SELECT 1", {}, Driver("injected"))


async def _buyer(shop) -> dict[str, Any]:
    user = await make_user(shop, balance=50_000)
    product = await make_product(shop, price=10_000, stock=3, name="Lamp")
    await make_coupon(shop, code="TENK", value=1_000)
    return {"user": user, "product": product}


def claim(body: Callable[[dict[str, Any]], dict[str, Any]], *, who: str = "user",
          coupon: dict[str, Any] | None = None) -> Setup:
    async def setup(shop):
        await make_coupon(shop, code="SALE", **(coupon or {"quantity": 5}))
        user, other = await make_user(shop), await make_user(shop)
        names = {"user": user.id, "other": other.id}
        token = {"user": user.token, "other": other.token,
                 "ghost": shop.ctx.accounts.tokens.issue(user.id + 10_000, "CUSTOMER", T0),
                 "nobody": None, "garbage": "not-a-token"}[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return names, body(names), headers
    return setup


def order(body: Callable[[dict[str, Any]], dict[str, Any]], *, who: str = "user",
          key: str | None = None) -> Setup:
    async def setup(shop):
        bought = await _buyer(shop)
        user = bought["user"]
        poor = await make_user(shop, balance=100)
        names = {"user": user.id, "product": bought["product"], "poor": poor.id}
        token = {"user": user.token, "poor": poor.token,
                 "ghost": shop.ctx.accounts.tokens.issue(user.id + 10_000, "CUSTOMER", T0),
                 "nobody": None}[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        return names, body(names), headers
    return setup


def confirm(body: Callable[[dict[str, Any]], dict[str, Any]], *, who: str = "user",
            order: str = "paid") -> Setup:
    """A confirm of an order the user placed and paid from the balance (no gateway here:
    what the lean path answers is the refusals around it, and the route the rest)."""
    async def setup(shop):
        bought = await _buyer(shop)
        user, other = bought["user"], await make_user(shop)
        placed = await shop.client.post(
            "/api/orders", json={"userId": user.id, "items": [
                {"productId": bought["product"], "quantity": 1}]},
            headers={"Authorization": f"Bearer {user.token}"})
        assert placed.status_code == 201, placed.text
        names = {"user": user.id, "other": other.id, "product": bought["product"],
                 "order": {"paid": placed.json()["orderId"], "none": 999_999}.get(order, order)}
        token = {"user": user.token, "other": other.token, "nobody": None}[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return names, body(names), headers
    return setup


def paying(n):  # noqa: ANN001, ANN201
    return {"paymentKey": "pk-1", "amount": 10_000}


def line(n, quantity=1, **extra):  # noqa: ANN001
    return {"userId": n["user"], "items": [{"productId": n["product"], "quantity": quantity}],
            **extra}


CONFIRM = "/api/orders/{order}/payment/confirm"
CASES: dict[str, tuple[str, Setup, bool, type[Exception] | None]] = {
    # name: (path, setup, answered by the lean path, error injected at the repository)
    "claim": ("/api/coupons/claim",
              claim(lambda n: {"userId": n["user"], "couponCode": "sale"}), True, None),
    "claim for another": ("/api/coupons/claim",
                          claim(lambda n: {"userId": n["other"], "couponCode": "SALE"}),
                          True, None),
    "claim no such coupon": ("/api/coupons/claim",
                             claim(lambda n: {"userId": n["user"], "couponCode": "NOPE"}),
                             True, None),
    "claim sold out": ("/api/coupons/claim",
                       claim(lambda n: {"userId": n["user"], "couponCode": "SALE"},
                             coupon={"quantity": 1, "starts_at": T0 - timedelta(days=1)}),
                       True, None),
    "claim not active": ("/api/coupons/claim",
                         claim(lambda n: {"userId": n["user"], "couponCode": "SALE"},
                               coupon={"starts_at": T0 + timedelta(days=1)}), True, None),
    "claim by a user who does not exist": (
        "/api/coupons/claim",
        claim(lambda n: {"userId": n["user"] + 10_000, "couponCode": "SALE"}, who="ghost"),
        True, None),
    "claim without a token": ("/api/coupons/claim",
                              claim(lambda n: {"userId": n["user"], "couponCode": "SALE"},
                                    who="nobody"), False, None),
    "claim with a bad token": ("/api/coupons/claim",
                               claim(lambda n: {"userId": n["user"], "couponCode": "SALE"},
                                     who="garbage"), False, None),
    "claim missing code": ("/api/coupons/claim", claim(lambda n: {"userId": n["user"]}),
                           False, None),
    "claim id as text": ("/api/coupons/claim",
                         claim(lambda n: {"userId": str(n["user"]), "couponCode": "SALE"}),
                         False, None),
    "claim code too long": ("/api/coupons/claim",
                            claim(lambda n: {"userId": n["user"], "couponCode": "X" * 41}),
                            False, None),
    "claim, integrity error": ("/api/coupons/claim",
                               claim(lambda n: {"userId": n["user"], "couponCode": "SALE"}),
                               True, IntegrityError),
    "claim, bad value": ("/api/coupons/claim",
                         claim(lambda n: {"userId": n["user"], "couponCode": "SALE"}),
                         True, DataError),
    "claim, database down": ("/api/coupons/claim",
                             claim(lambda n: {"userId": n["user"], "couponCode": "SALE"}),
                             True, OperationalError),
    "order": ("/api/orders", order(line), True, None),
    "order with a key": ("/api/orders", order(line, key="k-1"), True, None),
    "order with a bad key": ("/api/orders", order(line, key=" "), False, None),
    "order single-product form": ("/api/orders", order(lambda n: {
        "userId": n["user"], "productId": n["product"], "quantity": 2}), True, None),
    "order with a coupon": ("/api/orders", order(lambda n: line(n, couponCode="TENK")),
                            True, None),
    "order for another": ("/api/orders", order(line, who="poor"), True, None),
    "order out of stock": ("/api/orders", order(lambda n: line(n, 4)), True, None),
    "order no such product": ("/api/orders", order(lambda n: {
        "userId": n["user"], "items": [{"productId": 999_999, "quantity": 1}]}), True, None),
    "order coupon not held": ("/api/orders", order(lambda n: line(n, couponCode="NONE")),
                              True, None),
    "order by card without a gateway": ("/api/orders", order(lambda n: line(
        n, paymentMethod="CARD", balanceAmount=500)), True, None),
    "order balanceAmount without card": ("/api/orders", order(lambda n: line(
        n, balanceAmount=500)), False, None),
    "order unknown payment method": ("/api/orders", order(lambda n: line(
        n, paymentMethod="CASH")), False, None),
    "order balance too low": ("/api/orders", order(lambda n: {
        **line(n), "userId": n["poor"]}, who="poor"), True, None),
    "order by a user who does not exist": ("/api/orders", order(lambda n: {
        **line(n), "userId": n["user"] + 10_000}, who="ghost"), True, None),
    "order without a token": ("/api/orders", order(line, who="nobody"), False, None),
    "order no items": ("/api/orders", order(lambda n: {"userId": n["user"], "items": []}),
                       False, None),
    "order both forms": ("/api/orders", order(lambda n: {
        **line(n), "productId": n["product"], "quantity": 1}), False, None),
    "order merged past 1,000": ("/api/orders", order(lambda n: {
        "userId": n["user"], "items": [{"productId": n["product"], "quantity": 600}] * 2}),
        False, None),
    "order quantity as float": ("/api/orders", order(lambda n: {
        "userId": n["user"], "items": [{"productId": n["product"], "quantity": 1.5}]}),
        False, None),
    "order, integrity error": ("/api/orders", order(line), True, IntegrityError),
    "order, bad value": ("/api/orders", order(line), True, DataError),
    "order, database down": ("/api/orders", order(line), True, OperationalError),
    "confirm a balance order": (CONFIRM, confirm(paying), True, None),
    "confirm another's order": (CONFIRM, confirm(paying, who="other"), True, None),
    "confirm no such order": (CONFIRM, confirm(paying, order="none"), True, None),
    "confirm order id 0": (CONFIRM, confirm(paying, order="0"), False, None),
    "confirm order id as a word": (CONFIRM, confirm(paying, order="first"), False, None),
    "confirm order id too large": (CONFIRM, confirm(paying, order="9" * 20), False, None),
    "confirm order id signed": (CONFIRM, confirm(paying, order="+1"), False, None),
    "confirm without a token": (CONFIRM, confirm(paying, who="nobody"), False, None),
    "confirm missing key": (CONFIRM, confirm(lambda n: {"amount": 10_000}), False, None),
    "confirm amount as text": (CONFIRM, confirm(lambda n: {"paymentKey": "pk-1",
                                                           "amount": "10000"}), False, None),
    "confirm, database down": (CONFIRM, confirm(paying), True, OperationalError),
}
INJECT_AT = {"/api/coupons/claim": ("ecommerce.coupons.repository", "get_by_code"),
             "/api/orders": ("ecommerce.orders.repository", "quote"),
             CONFIRM: ("ecommerce.orders.repository", "get")}


def _normalised(response: httpx.Response, names: dict[str, int]) -> tuple[int, Any]:
    """Status and body with the setup's ids named (ids differ between the two runs). Users
    and products are named apart: a user's id may equal a product's in one run only."""
    products = {value: f"<{name}>" for name, value in names.items() if name == "product"}
    people = {value: f"<{name}>" for name, value in names.items() if name != "product"}

    def walk(key: str, value: Any) -> Any:
        if key == "timestamp":
            return "<time>"
        if key in ("orderId", "userCouponId"):
            return "<id>"
        if key in ("userId", "productId"):
            return (people if key == "userId" else products).get(value, value)
        if isinstance(value, dict):
            return {k: walk(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(key, v) for v in value]
        if isinstance(value, str) and key == "path" and "order" in names:
            return value.replace(f"/{names['order']}/", "/<order>/")
        if isinstance(value, str) and key == "message":
            for number, name in products.items():
                value = value.replace(f"(product {number})", f"(product {name})").replace(
                    f"product {number} is", f"product {name} is")
        return value

    return response.status_code, walk("", response.json())


def _lean_answers() -> float:
    return sum(sample.value for family in metrics.REQUESTS.collect()
               for sample in family.samples
               if sample.name.endswith("_total") and sample.labels.get("handler") == "lean")


@pytest.mark.parametrize("case", list(CASES))
async def test_the_lean_path_and_the_route_answer_alike(shop, case, monkeypatch):
    path, setup, lean_answers, injected = CASES[case]
    route_only = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app.api),
                                   base_url="http://shop.test")
    answers = []
    async with route_only:
        for client in (shop.client, route_only):
            await wipe(shop.settings.database_url)
            shop.ctx.coupons.gate = LocalGate()  # ids may be reused after the wipe
            shop.clock.freeze(T0)
            names, body, headers = await setup(shop)
            if injected is not None:
                module, name = INJECT_AT[path]

                async def fail(*args: Any, **kwargs: Any) -> Any:
                    raise _db_error(injected)

                monkeypatch.setattr(f"{module}.{name}", fail)
            before = _lean_answers()
            response = await client.post(path.format(**names), json=body, headers=headers)
            monkeypatch.undo()
            if client is shop.client:
                assert (_lean_answers() > before) == lean_answers, (case, response.text)
            answers.append(_normalised(response, names))
    assert answers[0] == answers[1], case
