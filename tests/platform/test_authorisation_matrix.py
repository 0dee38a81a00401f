"""Every route of the app × (anonymous, owner, another customer, admin), with the status
each must get. The table is checked against the app's route table, so a new route cannot
be added without saying here who may call it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import insert, select

from ecommerce.consumers.models import consumer_deliveries
from ecommerce.events.models import outbox
from tests.factories import assert_error, make_admin, make_coupon, make_product, make_user

ROLES = ("anonymous", "owner", "other", "admin")
PUBLIC = dict.fromkeys(ROLES, 200)
SIGNED_IN = {"anonymous": 401, "owner": 200, "other": 200, "admin": 200}
OWNER_OR_ADMIN = {"anonymous": 401, "owner": 200, "other": 403, "admin": 200}
ADMIN_ONLY = {"anonymous": 401, "owner": 403, "other": 403, "admin": 200}


def created(expected: dict[str, int]) -> dict[str, int]:
    return {role: 201 if status == 200 else status for role, status in expected.items()}


@dataclass
class World:
    """What the requests refer to: the owner's things, set up fresh for each role."""

    owner: Any
    other: Any
    admin: Any
    product: int
    order: int
    event: int
    event_id: str

    def headers(self, role: str) -> dict[str, str]:
        user = {"owner": self.owner, "other": self.other, "admin": self.admin}.get(role)
        return user.headers if user else {}


# (method, path template) -> (who gets what, the request: path and JSON body)
MATRIX: dict[tuple[str, str], tuple[dict[str, int], Any]] = {
    ("GET", "/"): (dict.fromkeys(ROLES, 307), lambda w, r: ("/", None)),  # to the storefront
    ("GET", "/healthz"): (PUBLIC, lambda w, r: ("/healthz", None)),
    ("GET", "/livez"): (PUBLIC, lambda w, r: ("/livez", None)),
    ("GET", "/readyz"): (PUBLIC, lambda w, r: ("/readyz", None)),
    ("GET", "/metrics"): (PUBLIC, lambda w, r: ("/metrics", None)),
    ("GET", "/openapi.json"): (PUBLIC, lambda w, r: ("/openapi.json", None)),
    ("GET", "/docs"): (PUBLIC, lambda w, r: ("/docs", None)),
    ("GET", "/favicon.ico"): (PUBLIC, lambda w, r: ("/favicon.ico", None)),
    ("POST", "/api/auth/signup"): (created(PUBLIC), lambda w, r: (
        "/api/auth/signup", {"username": f"new_{r}", "password": "password-123"})),
    ("POST", "/api/auth/login"): (PUBLIC, lambda w, r: (
        "/api/auth/login", {"username": w.owner.username, "password": "password-123"})),
    ("GET", "/api/users/me"): (SIGNED_IN, lambda w, r: ("/api/users/me", None)),
    ("PATCH", "/api/users/me"): (SIGNED_IN, lambda w, r: (
        "/api/users/me", {"email": f"{r}@example.kr"})),
    ("GET", "/api/balance/{userId}"): (OWNER_OR_ADMIN, lambda w, r: (
        f"/api/balance/{w.owner.id}", None)),
    ("POST", "/api/balance/recharge"): (OWNER_OR_ADMIN, lambda w, r: (
        "/api/balance/recharge", {"userId": w.owner.id, "amount": 1_000})),
    ("GET", "/api/balance/{userId}/history"): (OWNER_OR_ADMIN, lambda w, r: (
        f"/api/balance/{w.owner.id}/history", None)),
    ("GET", "/api/categories"): (PUBLIC, lambda w, r: ("/api/categories", None)),
    ("GET", "/api/products"): (PUBLIC, lambda w, r: ("/api/products", None)),
    ("GET", "/api/products/top"): (PUBLIC, lambda w, r: ("/api/products/top", None)),
    ("GET", "/api/products/{id}"): (PUBLIC, lambda w, r: (f"/api/products/{w.product}", None)),
    ("POST", "/api/admin/categories"): (created(ADMIN_ONLY), lambda w, r: (
        "/api/admin/categories", {"slug": "matrix", "name": "Matrix"})),
    ("GET", "/api/admin/products"): (ADMIN_ONLY, lambda w, r: ("/api/admin/products", None)),
    ("POST", "/api/admin/products"): (created(ADMIN_ONLY), lambda w, r: (
        "/api/admin/products", {"name": "Matrix", "description": "", "price": 500,
                                "stock": 5, "category": "general"})),
    ("GET", "/api/admin/products/{id}"): (ADMIN_ONLY, lambda w, r: (
        f"/api/admin/products/{w.product}", None)),
    ("PATCH", "/api/admin/products/{id}"): (ADMIN_ONLY, lambda w, r: (
        f"/api/admin/products/{w.product}", {"description": "edited"})),
    ("POST", "/api/admin/products/{id}/stock"): (ADMIN_ONLY, lambda w, r: (
        f"/api/admin/products/{w.product}/stock", {"delta": 1})),
    ("GET", "/api/coupons"): (SIGNED_IN, lambda w, r: ("/api/coupons", None)),
    ("GET", "/api/coupons/{code}"): (SIGNED_IN, lambda w, r: ("/api/coupons/OPEN", None)),
    ("POST", "/api/coupons/claim"): (OWNER_OR_ADMIN, lambda w, r: (
        "/api/coupons/claim", {"userId": w.owner.id, "couponCode": "OPEN"})),
    ("GET", "/api/users/{userId}/coupons"): (OWNER_OR_ADMIN, lambda w, r: (
        f"/api/users/{w.owner.id}/coupons", None)),
    ("POST", "/api/admin/coupons"): (created(ADMIN_ONLY), lambda w, r: (
        "/api/admin/coupons", {"code": "MATRIX", "name": "Matrix", "discountType": "FIXED",
                               "discountValue": 100, "totalQuantity": 10, "validDays": 1})),
    ("GET", "/api/admin/coupons"): (ADMIN_ONLY, lambda w, r: ("/api/admin/coupons", None)),
    ("POST", "/api/orders"): (created(OWNER_OR_ADMIN), lambda w, r: (
        "/api/orders", {"userId": w.owner.id, "items": [{"productId": w.product,
                                                          "quantity": 1}]})),
    ("POST", "/api/orders/quote"): (OWNER_OR_ADMIN, lambda w, r: (
        "/api/orders/quote", {"userId": w.owner.id, "items": [{"productId": w.product,
                                                                "quantity": 1}]})),
    ("GET", "/api/admin/sales"): (ADMIN_ONLY, lambda w, r: ("/api/admin/sales", None)),
    ("GET", "/api/admin/events/status"): (ADMIN_ONLY, lambda w, r: (
        "/api/admin/events/status", None)),
    # Another customer's order does not exist for them (SPEC: 404, not 403).
    ("GET", "/api/orders/{orderId}"): (OWNER_OR_ADMIN | {"other": 404}, lambda w, r: (
        f"/api/orders/{w.order}", None)),
    ("POST", "/api/orders/{orderId}/cancel"): (OWNER_OR_ADMIN | {"other": 404}, lambda w, r: (
        f"/api/orders/{w.order}/cancel", None)),
    ("GET", "/api/users/{userId}/orders"): (OWNER_OR_ADMIN, lambda w, r: (
        f"/api/users/{w.owner.id}/orders", None)),
    ("GET", "/api/admin/orders"): (ADMIN_ONLY, lambda w, r: ("/api/admin/orders", None)),
    # Card payment: this shop has no gateway, so who may gets 409 (card payment is off);
    # the payment confirm of another's order: it does not exist for them.
    ("POST", "/api/orders/{orderId}/payment/confirm"): (
        {"anonymous": 401, "owner": 409, "other": 404, "admin": 409}, lambda w, r: (
            f"/api/orders/{w.order}/payment/confirm", {"paymentKey": "k", "amount": 1})),
    ("POST", "/api/balance/charges"): (
        {"anonymous": 401, "owner": 409, "other": 403, "admin": 409}, lambda w, r: (
            "/api/balance/charges", {"userId": w.owner.id, "amount": 1_000})),
    ("POST", "/api/balance/charges/{chargeId}/confirm"): (  # no charge exists: 404 to all
        {"anonymous": 401, "owner": 404, "other": 404, "admin": 404}, lambda w, r: (
            "/api/balance/charges/1/confirm", {"paymentKey": "k", "amount": 1})),
    ("POST", "/api/payments/webhook"): (PUBLIC, lambda w, r: (  # the gateway: no token
        "/api/payments/webhook", {"data": {"orderId": "ORD-unknown"}})),
    ("GET", "/api/admin/payments"): (ADMIN_ONLY, lambda w, r: ("/api/admin/payments", None)),
    ("GET", "/api/payment-options"): (PUBLIC, lambda w, r: ("/api/payment-options", None)),
    ("GET", "/shop/names.json"): (PUBLIC, lambda w, r: ("/shop/names.json", None)),
    ("GET", "/api/admin/events"): (ADMIN_ONLY, lambda w, r: ("/api/admin/events", None)),
    ("GET", "/api/admin/consumers"): (ADMIN_ONLY, lambda w, r: ("/api/admin/consumers", None)),
    ("GET", "/api/admin/consumers/{name}/dead"): (ADMIN_ONLY, lambda w, r: (
        "/api/admin/consumers/email/dead", None)),
    ("POST", "/api/admin/consumers/{name}/dead/{eventId}/retry"): (ADMIN_ONLY, lambda w, r: (
        f"/api/admin/consumers/email/dead/{w.event_id}/retry", None)),
    ("POST", "/api/admin/events/{id}/retry"): (ADMIN_ONLY, lambda w, r: (
        f"/api/admin/events/{w.event}/retry", None)),
    # Last: it revokes the caller's earlier tokens.
    ("POST", "/api/users/me/password"): (SIGNED_IN, lambda w, r: (
        "/api/users/me/password", {"currentPassword": "password-123",
                                   "newPassword": f"another-{r}-123"})),
}


def route_table(app) -> set[tuple[str, str]]:  # noqa: ANN001
    """(method, path) of every route the app serves, through included routers."""
    return {(method, route.path) for route in iter_route_contexts(app.routes)
            for method in route.methods or () if method != "HEAD"}


async def test_the_matrix_covers_every_route(shop):
    assert route_table(shop.app) == set(MATRIX)


async def make_world(shop) -> World:  # noqa: ANN001
    owner = await make_user(shop, balance=100_000)
    other = await make_user(shop, balance=100_000)
    admin = await make_admin(shop)
    product = await make_product(shop, price=1_000, stock=100)
    await make_coupon(shop, code="OPEN", quantity=10)
    placed = await shop.client.post("/api/orders", headers=owner.headers, json={
        "userId": owner.id, "items": [{"productId": product, "quantity": 1}]})
    assert placed.status_code == 201, placed.text
    order = placed.json()["orderId"]
    async with shop.db.uow() as uow:  # an event an admin can retry, dead for each consumer
        event, event_id = (await uow.conn.execute(
            select(outbox.c.id, outbox.c.event_id).where(outbox.c.order_id == order))).one()
        now = shop.clock.now()
        await uow.conn.execute(insert(consumer_deliveries), [
            {"consumer": name, "outbox_id": event, "event_id": event_id, "status": "DEAD",
             "attempts": 10, "created_at": now} for name in ("data-platform", "email")])
    return World(owner, other, admin, product, order, event, event_id)


@pytest.mark.parametrize("role", ROLES)
async def test_each_route_answers_each_role_as_the_matrix_says(shop, role):
    world = await make_world(shop)
    for (method, _template), (expected, build) in MATRIX.items():
        path, body = build(world, role)
        response = await shop.client.request(method, path, json=body,
                                             headers=world.headers(role))
        want = expected[role]
        assert response.status_code == want, (method, path, role, response.text[:300])
        if want == 401:
            assert_error(response, 401, "UNAUTHORIZED")
        elif want == 403:
            assert_error(response, 403, "FORBIDDEN")


@pytest.mark.parametrize("role", ["anonymous", "owner"])
async def test_a_non_admin_is_refused_before_any_admin_route_reads_its_request(shop, role):
    """Issue 29 item 9: authorisation before validation. Every admin route, with no body,
    an empty JSON object and a garbage body, and with a query that would not validate:
    401 to the anonymous, 403 to a customer, never a 400 that describes the route."""
    import re

    world = await make_world(shop)
    expected = {"anonymous": (401, "UNAUTHORIZED"), "owner": (403, "FORBIDDEN")}[role]
    admin_routes = sorted((method, path) for method, path in route_table(shop.app)
                          if path.startswith("/api/admin/"))
    assert len(admin_routes) >= 15, admin_routes
    for method, template in admin_routes:
        path = re.sub(r"\{[^}]+\}", "1", template) + "?page=0&size=bogus&status=nope"
        for body in (None, b"", b"{}", b"{not json", b"\x00\xff garbage"):
            response = await shop.client.request(
                method, path, content=body, headers={
                    **world.headers(role), "Content-Type": "application/json"})
            assert_error(response, *expected), (method, path, body)
            assert "required" not in response.text and "field" not in response.text
