"""Every query on orders and their items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

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


async def add_order(conn: AsyncConnection, user_id: int, now: datetime) -> int:
    result = await conn.execute(insert(orders).values(
        user_id=user_id, status="PAID", total_price=0, discount_amount=0, paid_amount=0,
        created_at=now))
    return int(result.inserted_primary_key[0])


async def set_amounts(conn: AsyncConnection, order_id: int, total: int, discount: int,
                      coupon_code: str | None, user_coupon_id: int | None, card: int) -> None:
    """The order's amounts; `card` > 0: a card order, PAYMENT_PENDING until it is paid."""
    await conn.execute(update(orders).where(orders.c.id == order_id).values(
        status="PAYMENT_PENDING" if card else "PAID",
        payment_method="CARD" if card else "BALANCE",
        total_price=total, discount_amount=discount, paid_amount=total - discount,
        balance_amount=total - discount - card, card_amount=card,
        coupon_code=coupon_code, user_coupon_id=user_coupon_id))


async def add_items(conn: AsyncConnection, order_id: int, items: list[dict[str, Any]]) -> None:
    await conn.execute(insert(order_items), [{**item, "order_id": order_id} for item in items])


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
               status: str, cancelled_at: datetime | None = None) -> bool:
    """Set the status if it is one of `from_statuses` (the order row's lock, taken first
    by every change of an order): whether it was."""
    values: dict[str, Any] = {"status": status}
    if cancelled_at is not None:
        values["cancelled_at"] = cancelled_at
    result = await conn.execute(update(orders).where(orders.c.id == order_id,
                                                     orders.c.status.in_(from_statuses))
                                .values(**values))
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
    return (await conn.execute(select(orders).where(_filter(user_id, status))
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


# The function's code: this file, applied by migration 0006 (see its header).
PLACE_ORDER_SQL = (Path(__file__).parent / "place_order.sql").read_text(encoding="utf-8")
_PLACE = text(
    "SELECT order_id, stocks FROM shop_place_order(:user_id, :now, :day, :products, "
    ":quantities, :prices, :names, :total, :discount, :user_coupon_id, :coupon_id, "
    ":coupon_code, :event_id, :event, :method, :status, :balance, :card)")


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
