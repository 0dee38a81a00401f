"""Every query on orders and their items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.accounts.models import users
from ecommerce.catalog.models import products
from ecommerce.orders.models import order_items, orders
from ecommerce.platform.database import shop_refusal
from ecommerce.wallet.models import wallets


async def quote(conn: AsyncConnection, user_id: int, product_ids: Sequence[int]
                ) -> tuple[int | None, dict[int, Any]]:
    """The buyer's balance (None: no such user) and the id, name, price, stock and active
    flag of these products, by id, in one read without locks."""
    rows = (await conn.execute(
        select(wallets.c.balance, products.c.id, products.c.name, products.c.price,
               products.c.stock, products.c.active)
        .select_from(wallets.outerjoin(products, products.c.id.in_(product_ids)))
        .where(wallets.c.user_id == user_id))).all()
    if not rows:
        return None, {}
    return rows[0].balance, {row.id: row for row in rows if row.id is not None}


async def add_order(conn: AsyncConnection, order: Any) -> int:
    """A priced order's row (orders/pricing.py): PAID, or PAYMENT_PENDING by card."""
    paid = order.status == "PAID"
    result = await conn.execute(insert(orders).values(
        user_id=order.user_id, status=order.status, total_price=order.total,
        discount_amount=order.discount, paid_amount=order.paid,
        coupon_code=order.coupon.code if order.coupon else None,
        user_coupon_id=order.coupon.user_coupon_id if order.coupon else None,
        created_at=order.placed_at, paid_at=order.placed_at if paid else None,
        payment_method=order.method, balance_amount=order.balance_part,
        card_amount=order.card_part))
    return int(result.inserted_primary_key[0])


async def add_items(conn: AsyncConnection, order_id: int, lines: Sequence[Any]) -> None:
    await conn.execute(insert(order_items), [
        {"order_id": order_id, "product_id": line.product_id, "name": line.name,
         "unit_price": line.unit_price, "quantity": line.quantity,
         "line_total": line.line_total} for line in lines])


async def get(conn: AsyncConnection, order_id: int) -> Any:
    return (await conn.execute(select(orders).where(orders.c.id == order_id))).first()


async def items_of(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        rows = (await conn.execute(select(order_items).where(order_items.c.order_id.in_(
            order_ids)).order_by(order_items.c.product_id))).all()
        for row in rows:
            found[row.order_id].append(row)
    return found


async def move(conn: AsyncConnection, order_id: int, from_statuses: Sequence[str],
               status: str, **values: Any) -> bool:
    """Set the status (and `values`) if it is one of `from_statuses`: whether it was."""
    result = await conn.execute(update(orders).where(orders.c.id == order_id,
                                                     orders.c.status.in_(from_statuses))
                                .values(status=status, **values))
    return result.rowcount == 1


def _filter(user_id: int | None, status: str | None) -> Any:
    conditions = []
    if user_id is not None:
        conditions.append(orders.c.user_id == user_id)
    if status is not None:
        conditions.append(orders.c.status == status)
    return and_(True, *conditions)


async def search(conn: AsyncConnection, user_id: int | None, status: str | None, limit: int,
                 offset: int) -> Sequence[Any]:
    """Orders newest first, each with its buyer's username."""
    return (await conn.execute(select(orders, users.c.username)
                               .join(users, users.c.id == orders.c.user_id)
                               .where(_filter(user_id, status))
                               .order_by(orders.c.id.desc()).limit(limit).offset(offset))).all()


async def count(conn: AsyncConnection, user_id: int | None, status: str | None) -> int:
    return (await conn.execute(select(func.count()).select_from(orders)
                               .where(_filter(user_id, status)))).scalar_one()


async def paid_since(conn: AsyncConnection, since: datetime) -> Sequence[Any]:
    """(created_at, paid_amount) of every order still paid, placed at or after `since`."""
    return (await conn.execute(select(orders.c.created_at, orders.c.paid_amount).where(
        orders.c.status == "PAID", orders.c.created_at >= since))).all()


class Refused(Exception):  # noqa: N818 - the database's answer, mapped to errors by the service
    """`shop_place_order` refused the order: `reason` is what it raised, `detail` its data."""

    def __init__(self, reason: str, detail: str | None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# The function's code: this file, applied by the newest migration that replaces it, which
# keeps its own copy (tests/orders/test_place_order_function.py checks they are the same).
PLACE_ORDER_SQL = (Path(__file__).parent / "place_order.sql").read_text(encoding="utf-8")
_PLACE = text(
    "SELECT order_id, stocks FROM shop_place_order(:user_id, :now, :day, :products, "
    ":quantities, :prices, :names, :total, :discount, :user_coupon_id, :coupon_id, "
    ":coupon_code, :event_id, :event, :method, :status, :balance, :card, :unpaid_limit, "
    ":hold_percent, :key_user, :key, :fingerprint, :key_at, :answer_status, :answer)")


async def place_in_one_call(conn: AsyncConnection, values: dict[str, Any]
                            ) -> tuple[int, list[int]]:
    """PostgreSQL: every write of a priced order in one round trip (place_order.sql);
    (order id, each line's stock after). Refused if a guard failed; the transaction is
    then aborted and must be rolled back."""
    try:
        row = (await conn.execute(_PLACE, values)).one()
    except DBAPIError as error:
        refusal = shop_refusal(error)
        if refusal is not None:
            raise Refused(*refusal) from None
        raise
    return int(row.order_id), [int(stock) for stock in row.stocks]
