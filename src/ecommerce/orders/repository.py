"""Every query on orders and their items."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.accounts.models import users
from ecommerce.catalog.models import products
from ecommerce.orders.models import order_items, orders
from ecommerce.payments.models import payments
from ecommerce.platform.database import shop_refusal
from ecommerce.platform.sql import move_status
from ecommerce.wallet.models import wallets


async def quote(conn: AsyncConnection, user_id: int, product_ids: Sequence[int]
                ) -> tuple[int | None, dict[int, Any]]:
    """The buyer's balance (None: no such user) and the id, name, price, stock and active
    flag of these products, by id, in one read without locks."""
    rows = (await conn.execute(_QUOTE, {"_user_id": user_id,
                                        "_product_ids": list(product_ids)})).all()
    if not rows:
        return None, {}
    return rows[0].balance, {row.id: row for row in rows if row.id is not None}


_QUOTE = (select(wallets.c.balance, products.c.id, products.c.name, products.c.price,
                 products.c.stock, products.c.active)
          .select_from(wallets.outerjoin(
              products, products.c.id.in_(bindparam("_product_ids", expanding=True))))
          .where(wallets.c.user_id == bindparam("_user_id")))


async def mail_facts(conn: AsyncConnection, user_id: int, order_id: int,
                     product_ids: Sequence[int]) -> tuple[Any, Any, dict[int, str]] | None:
    """What an order's e-mail needs, in one read: the user (username, email; None: no such
    user), the stored order (when it was placed, how it was paid; None if it is gone) and
    the products' names by id, listed or not."""
    rows = (await conn.execute(_MAIL_FACTS, {"_user_id": user_id, "_order_id": order_id,
                                             "_product_ids": list(product_ids)})).all()
    if not rows:
        return None
    first = rows[0]
    user = SimpleNamespace(username=first.username, email=first.email)
    stored = (SimpleNamespace(created_at=first.created_at, payment_method=first.payment_method,
                              balance_amount=first.balance_amount,
                              card_amount=first.card_amount)
              if first.created_at is not None else None)
    return user, stored, {row.product_id: row.name for row in rows
                          if row.product_id is not None}


_MAIL_FACTS = (select(users.c.username, users.c.email, orders.c.created_at,
                      orders.c.payment_method, orders.c.balance_amount, orders.c.card_amount,
                      products.c.id.label("product_id"), products.c.name)
               # The products first and the order tied to its user: SQLAlchemy's MySQL
               # compiler sees a chained join's tables as linked only through a column.
               .select_from(users
                            .outerjoin(products, products.c.id.in_(
                                bindparam("_product_ids", expanding=True)))
                            .outerjoin(orders, and_(orders.c.id == bindparam("_order_id"),
                                                    orders.c.user_id == users.c.id)))
               .where(users.c.id == bindparam("_user_id")))


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


_BY_ID = select(orders).where(orders.c.id == bindparam("order_id"))
_ITEMS_OF = (select(order_items)
             .where(order_items.c.order_id.in_(bindparam("order_ids", expanding=True)))
             .order_by(order_items.c.product_id))
_ITEM_FIELDS = [column.name for column in order_items.c]
_WITH_ITEMS = (select(orders, *[column.label(f"item_{column.name}")
                                for column in order_items.c])
               .select_from(orders.outerjoin(order_items,
                                             order_items.c.order_id == orders.c.id))
               .where(orders.c.id == bindparam("order_id"))
               .order_by(order_items.c.product_id))
_ORDER_FIELDS = [column.name for column in orders.c]
_PAYMENT_FIELDS = [column.name for column in payments.c]
_CARD_PAYMENT = (select(*[column.label(f"order_{column.name}") for column in orders.c],
                        *[column.label(f"payment_{column.name}") for column in payments.c],
                        *[column.label(f"item_{column.name}") for column in order_items.c])
                 .select_from(orders.outerjoin(payments, payments.c.order_id == orders.c.id)
                              .outerjoin(order_items, order_items.c.order_id == orders.c.id))
                 .where(orders.c.id == bindparam("order_id"))
                 .order_by(order_items.c.product_id))


async def get(conn: AsyncConnection, order_id: int) -> Any:
    return (await conn.execute(_BY_ID, {"order_id": order_id})).first()


async def items_of(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {order_id: [] for order_id in order_ids}
    if order_ids:
        for row in (await conn.execute(_ITEMS_OF, {"order_ids": list(order_ids)})).all():
            found[row.order_id].append(row)
    return found


async def with_items(conn: AsyncConnection, order_id: int) -> tuple[Any, list[Any]]:
    """An order (None if there is none) and its items by product id, in one read."""
    rows = (await conn.execute(_WITH_ITEMS, {"order_id": order_id})).all()
    if not rows:
        return None, []
    first = rows[0]._mapping
    order = SimpleNamespace(**{column.name: first[column] for column in orders.c})
    items = [SimpleNamespace(**{name: row._mapping[f"item_{name}"] for name in _ITEM_FIELDS})
             for row in rows if row.item_id is not None]
    return order, items


async def card_payment(conn: AsyncConnection, order_id: int) -> Any:
    """An order's card payment's columns (None where it has none) with the order's buyer
    (`buyer_id`) and payment method (`order_method`), the order (`order`) and its items by
    product id (`items`), in one read; None if there is no such order."""
    rows = (await conn.execute(_CARD_PAYMENT, {"order_id": order_id})).all()
    if not rows:
        return None
    first = rows[0]._mapping
    order = SimpleNamespace(**{name: first[f"order_{name}"] for name in _ORDER_FIELDS})
    items = [SimpleNamespace(**{name: row._mapping[f"item_{name}"] for name in _ITEM_FIELDS})
             for row in rows if row._mapping["item_id"] is not None]
    return SimpleNamespace(**{name: first[f"payment_{name}"] for name in _PAYMENT_FIELDS},
                           buyer_id=order.user_id, order_method=order.payment_method,
                           order=order, items=items)


async def move(conn: AsyncConnection, order_id: int, from_statuses: Sequence[str],
               status: str, **values: Any) -> bool:
    """Set the status (and `values`) if it is one of `from_statuses`: whether it was."""
    return await move_status(conn, orders, order_id, from_statuses, status, values)


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


CARD_CONFIRMING_SQL = (Path(__file__).parent / "card_confirming.sql").read_text(
    encoding="utf-8")
_CARD_CONFIRMING = text("SELECT shop_card_order_confirming(:payment_id, :order_id, "
                        ":payment_key, :now)")


async def card_confirming_in_one_call(conn: AsyncConnection, values: dict[str, Any]) -> bool:
    """PostgreSQL: a card order's confirm begun in one round trip (card_confirming.sql);
    False if another request moved the payment first. Refused if the order was not
    PAYMENT_PENDING (nothing written)."""
    try:
        return bool((await conn.execute(_CARD_CONFIRMING, values)).scalar_one())
    except DBAPIError as error:
        refusal = shop_refusal(error)
        if refusal is not None:
            raise Refused(*refusal) from None
        raise


CARD_PAID_SQL = (Path(__file__).parent / "card_paid.sql").read_text(encoding="utf-8")
_CARD_PAID = text(
    "SELECT shop_card_order_paid(:payment_id, :order_id, :user_id, :payment_key, "
    ":approved_at, :now, :day, :products, :quantities, :event_id, :event)")


async def card_paid_in_one_call(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """PostgreSQL: a card order's plain approval applied in one round trip (card_paid.sql).
    Refused if a guard failed (nothing written)."""
    try:
        await conn.execute(_CARD_PAID, values)
    except DBAPIError as error:
        refusal = shop_refusal(error)
        if refusal is not None:
            raise Refused(*refusal) from None
        raise


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
