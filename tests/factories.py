"""Small async factories: `await make_user(shop, balance=10_000)`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ecommerce.wallet import service as wallet

_names = itertools.count(1)


@dataclass
class User:
    id: int
    username: str
    token: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(shop, *, balance: int = 0, role: str = "CUSTOMER",  # noqa: ANN001
                    username: str | None = None, password: str = "password-123") -> User:
    ctx = shop.ctx
    username = username or f"user{next(_names)}"
    user_id = await ctx.accounts.sign_up(username, password, role)
    if balance:
        async with ctx.db.uow() as uow:
            await wallet.recharge(uow, user_id, balance, ctx.clock.now())
    token = ctx.accounts.tokens.issue(user_id, role, ctx.clock.now())
    return User(user_id, username, token, role)


async def make_admin(shop) -> User:  # noqa: ANN001
    return await make_user(shop, role="ADMIN")


def assert_error(response, status: int, code: str) -> dict:  # noqa: ANN001
    """The response is the SPEC error body with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert set(body) == {"timestamp", "status", "error", "code", "message", "path"}, body
    assert body["timestamp"].endswith("Z") and body["message"]
    return body


async def make_category(shop, slug: str = "general", name: str | None = None) -> int:  # noqa: ANN001
    from ecommerce.catalog import service as catalog

    async with shop.db.uow() as uow:
        return await catalog.create_category(uow, slug, name or slug.title(), shop.clock.now())


async def make_product(shop, *, price: int = 1_000, stock: int = 10,  # noqa: ANN001
                       name: str | None = None, description: str = "",
                       category: str = "general") -> int:
    from ecommerce.catalog import repository as catalog_repo
    from ecommerce.catalog import service as catalog

    async with shop.db.uow() as uow:
        if await catalog_repo.category_id(uow.conn, category) is None:
            await catalog.create_category(uow, category, category.title(), shop.clock.now())
        row = await catalog.create_product(
            uow, shop.ctx.listings, name=name or f"product {next(_names)}",
            description=description, price=price, stock=stock, category=category,
            now=shop.clock.now())
    return int(row.id)


async def make_coupon(shop, *, code: str = "WELCOME", quantity: int = 100,  # noqa: ANN001
                      discount_type: str = "FIXED", value: int = 1_000,
                      max_discount: int | None = None, min_order: int = 0,
                      valid_days: int | None = 7, expires_at=None,  # noqa: ANN001
                      starts_at=None, ends_at=None) -> str:  # noqa: ANN001
    from ecommerce.coupons import service as coupons

    async with shop.db.uow() as uow:
        await coupons.create_coupon(uow, {
            "code": code, "name": code.title(), "discount_type": discount_type,
            "discount_value": value, "max_discount_amount": max_discount,
            "min_order_amount": min_order, "total_quantity": quantity,
            "issue_starts_at": starts_at, "issue_ends_at": ends_at,
            "expires_at": expires_at, "valid_days": None if expires_at else valid_days,
        }, shop.clock.now())
    return code
