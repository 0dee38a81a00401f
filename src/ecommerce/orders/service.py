"""Placing, paying and cancelling orders: each one transaction, all or nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ecommerce.accounts.errors import UserNotFound
from ecommerce.catalog import service as catalog
from ecommerce.catalog.errors import ProductNotFound
from ecommerce.catalog.listing import Listings
from ecommerce.coupons import service as coupons
from ecommerce.coupons.errors import CouponNotUsable
from ecommerce.events import outbox
from ecommerce.events.domain import OrderCancelled, OrderCompleted
from ecommerce.orders import repository
from ecommerce.orders.errors import OrderNotCancellable, OrderNotFound
from ecommerce.platform.database import RetryTransaction, UnitOfWork
from ecommerce.ranking import service as ranking
from ecommerce.wallet import service as wallet
from ecommerce.wallet.errors import InsufficientBalance


def places_in_one_statement(dialect: str) -> bool:
    """Whether `place_order` writes in one statement on this database (PostgreSQL)."""
    return dialect == "postgresql"


async def place_order(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *, user_id: int,
                      lines: Sequence[tuple[int, int]], coupon_code: str | None,
                      now: datetime, in_one_call: bool) -> dict[str, Any]:
    """Take the stock of every line, use the coupon, charge the balance, store the order,
    count the sale and record `order.completed`; any error leaves nothing changed.

    Every order and cancellation takes its locks in one order: the held coupon, the wallet,
    then product rows by id (and their sales rows), so overlapping orders never deadlock.
    The product rows come last because they are the ones every buyer in a sale wants: they
    are held only for the last few statements before commit. `in_one_call` (PostgreSQL
    only): the same writes in one call of `shop_place_order` (place_order.sql)."""
    _, quoted, items = await _priced(uow, user_id, lines)
    subtotal = sum(item["line_total"] for item in items)
    if in_one_call:  # PostgreSQL's shop_place_order (the use case chooses)
        return await _place_in_one_call(uow, listings, zone, user_id=user_id, lines=lines,
                                        items=items, subtotal=subtotal,
                                        coupon_code=coupon_code, now=now)
    order_id = await repository.add_order(uow.conn, user_id, now)
    applied = None
    if coupon_code is not None:
        applied = await coupons.use(uow, user_id, coupon_code, subtotal, order_id, now)
    discount = applied.discount if applied else 0
    paid = subtotal - discount
    if paid > 0:
        await wallet.pay(uow, user_id, paid, order_id, now)
    else:  # a free order still leaves its PAYMENT entry (of 0) in the ledger
        await wallet.record_zero_payment(uow, user_id, order_id, now)
    code = applied.code if applied else None
    await repository.set_amounts(uow.conn, order_id, subtotal, discount, code,
                                 applied.user_coupon_id if applied else None)
    uow.record(OrderCompleted(
        occurred_at=now, order_id=order_id, user_id=user_id,
        items=[(i["product_id"], i["quantity"], i["unit_price"]) for i in items],
        total_price=subtotal, discount_amount=discount, paid_amount=paid, coupon_code=code))
    await catalog.take_stock(uow, listings, lines, quoted, order_id, now)
    # After the stock: the items' foreign-key check would otherwise take a shared lock on
    # the product rows first, and InnoDB deadlocks two orders that both then want them.
    await repository.add_items(uow.conn, order_id, items)
    await ranking.record_sale(uow, lines, now, zone)
    return {"order_id": order_id, "user_id": user_id, "status": "PAID", "items": items,
            "total_price": subtotal, "discount_amount": discount, "paid_amount": paid,
            "coupon_code": code, "created_at": now, "cancelled_at": None}


async def _priced(uow: UnitOfWork, user_id: int, lines: Sequence[tuple[int, int]]
                  ) -> tuple[int, dict[int, Any], list[dict[str, Any]]]:
    """The buyer's balance, the products read without locks, and the lines at today's
    prices; UserNotFound or ProductNotFound (unlisted) first."""
    balance, quoted = await repository.quote(uow.conn, user_id, [pid for pid, _ in lines])
    if balance is None:
        raise UserNotFound()  # before anything else
    catalog.check_listed(quoted, lines)
    items = [{"product_id": pid, "name": quoted[pid].name, "unit_price": quoted[pid].price,
              "quantity": qty, "line_total": quoted[pid].price * qty} for pid, qty in lines]
    return balance, quoted, items


async def quote_order(uow: UnitOfWork, *, user_id: int, lines: Sequence[tuple[int, int]],
                      coupon_code: str | None, now: datetime) -> dict[str, Any]:
    """What `place_order` would charge now, by the same rules (listed products, enough
    stock, a usable coupon), with the buyer's balance; nothing is held or changed, and a
    balance that is too low is shown, not refused."""
    balance, quoted, items = await _priced(uow, user_id, lines)
    subtotal = sum(item["line_total"] for item in items)
    held = (await coupons.usable(uow, user_id, coupon_code, subtotal, now)
            if coupon_code is not None else None)
    for product_id, quantity in lines:  # after the coupon, as when the order is placed
        if quoted[product_id].stock < quantity:
            row = quoted[product_id]
            raise catalog.out_of_stock(product_id, row.name, row.stock, quantity)
    applied = coupons.applied(held, subtotal) if held is not None else None
    discount = applied.discount if applied else 0
    return {"items": items, "total_price": subtotal, "discount_amount": discount,
            "paid_amount": subtotal - discount, "coupon_code": applied.code if applied else None,
            "balance": balance}


async def _place_in_one_call(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *,
                             user_id: int, lines: Sequence[tuple[int, int]],
                             items: list[dict[str, Any]], subtotal: int,
                             coupon_code: str | None, now: datetime) -> dict[str, Any]:
    """PostgreSQL: the same order, its writes in one database call (decision 30). The
    reads and the rules stay here; `shop_place_order` takes the locks in the same order
    as the portable path and re-checks what may have changed since: the coupon still
    available, the balance, each price, the stock."""
    held = (await coupons.usable(uow, user_id, coupon_code, subtotal, now)
            if coupon_code is not None else None)
    applied = coupons.applied(held, subtotal) if held is not None else None
    discount = applied.discount if applied else 0
    code = applied.code if applied else None
    event = outbox.row(OrderCompleted(
        occurred_at=now, order_id=0, user_id=user_id,
        items=[(i["product_id"], i["quantity"], i["unit_price"]) for i in items],
        total_price=subtotal, discount_amount=discount, paid_amount=subtotal - discount,
        coupon_code=code))
    try:
        order_id, stocks = await repository.place_in_one_call(uow.conn, {
            "user_id": user_id, "now": now.astimezone(UTC).replace(tzinfo=None),
            "day": ranking.shop_day(now, zone),
            "products": [i["product_id"] for i in items],
            "quantities": [i["quantity"] for i in items],
            "prices": [i["unit_price"] for i in items], "names": [i["name"] for i in items],
            "total": subtotal, "discount": discount,
            "user_coupon_id": held.user_coupon_id if held is not None else None,
            "coupon_id": held.coupon_id if held is not None else None, "coupon_code": code,
            "event_id": event["event_id"], "event": event["payload"]})
    except repository.Refused as refused:
        raise _refusal(refused) from None
    uow.wrote_events()
    if 0 in stocks:
        await listings.changed(uow)
    return {"order_id": order_id, "user_id": user_id, "status": "PAID", "items": items,
            "total_price": subtotal, "discount_amount": discount,
            "paid_amount": subtotal - discount, "coupon_code": code, "created_at": now,
            "cancelled_at": None}


def _refusal(refused: repository.Refused) -> Exception:
    """The error `shop_place_order` stands for: the same as the portable path's."""
    if refused.reason == "PRICE_CHANGED":
        return RetryTransaction()
    if refused.reason == "COUPON_USED":
        return CouponNotUsable(coupons.ALREADY_USED)
    if refused.reason == "INSUFFICIENT_BALANCE":
        return InsufficientBalance()
    if refused.reason == "PRODUCT_NOT_FOUND":
        return ProductNotFound(f"No product {refused.detail}")
    if refused.reason == "OUT_OF_STOCK":
        product_id, name, stock, quantity = orjson.loads(refused.detail or "")
        return catalog.out_of_stock(product_id, name, stock, quantity)
    raise AssertionError(f"shop_place_order raised {refused.reason}")


async def cancel_order(uow: UnitOfWork, listings: Listings, zone: ZoneInfo, *, order_id: int,
                       user_id: int, is_admin: bool, now: datetime) -> dict[str, Any]:
    """Refund the payment, put the stock back, return the coupon, take the sale off the
    top sellers and record `order.cancelled`. Only a PAID order can be cancelled."""
    order = await _visible(uow, order_id, user_id, is_admin)
    if not await repository.mark_cancelled(uow.conn, order_id, now):
        raise OrderNotCancellable("This order is already cancelled")
    items = (await repository.items_of(uow.conn, [order_id]))[order_id]
    lines = [(item.product_id, item.quantity) for item in items]
    if order.user_coupon_id is not None:
        held = await coupons.held_by_id(uow, order.user_coupon_id)
        await coupons.give_back(uow, order.user_coupon_id, held.coupon_id, order.user_id,
                                order_id, now)
    await wallet.refund(uow, order.user_id, order.paid_amount, order_id, now)
    await catalog.return_stock(uow, listings, lines, order_id, now)
    await ranking.record_cancellation(uow, lines, order.created_at, zone)
    uow.record(OrderCancelled(
        occurred_at=now, order_id=order_id, user_id=order.user_id,
        items=[(i.product_id, i.quantity, i.unit_price) for i in items],
        total_price=order.total_price, discount_amount=order.discount_amount,
        paid_amount=order.paid_amount, coupon_code=order.coupon_code))
    return await get_order(uow, order_id, user_id=user_id, is_admin=True)


async def _visible(uow: UnitOfWork, order_id: int, user_id: int, is_admin: bool) -> Any:
    order = await repository.get(uow.conn, order_id)
    if order is None or (order.user_id != user_id and not is_admin):
        raise OrderNotFound()  # another user's order does not exist, as far as you know
    return order


def _view(order: Any, items: list[Any]) -> dict[str, Any]:
    return {
        "order_id": order.id, "user_id": order.user_id, "status": order.status,
        "items": [{"product_id": i.product_id, "name": i.name, "unit_price": i.unit_price,
                   "quantity": i.quantity, "line_total": i.line_total} for i in items],
        "total_price": order.total_price, "discount_amount": order.discount_amount,
        "paid_amount": order.paid_amount, "coupon_code": order.coupon_code,
        "created_at": order.created_at, "cancelled_at": order.cancelled_at,
    }


async def get_order(uow: UnitOfWork, order_id: int, *, user_id: int, is_admin: bool
                    ) -> dict[str, Any]:
    """The order with its items; OrderNotFound if missing or someone else's."""
    order = await _visible(uow, order_id, user_id, is_admin)
    return _view(order, (await repository.items_of(uow.conn, [order_id]))[order_id])


async def search(uow: UnitOfWork, *, user_id: int | None, status: str | None, limit: int,
                 offset: int) -> tuple[list[dict[str, Any]], int]:
    """Orders newest first (of one user, or all), with their items and the total."""
    rows = await repository.search(uow.conn, user_id, status, limit, offset)
    items = await repository.items_of(uow.conn, [row.id for row in rows])
    return ([_view(row, items[row.id]) for row in rows],
            await repository.count(uow.conn, user_id, status))


async def daily_sales(uow: UnitOfWork, *, days: int, now: datetime, zone: ZoneInfo
                      ) -> list[dict[str, Any]]:
    """Orders still paid and their revenue per calendar day of the shop's time zone, for
    the last `days` days including today, oldest first (days without sales show 0)."""
    today = ranking.shop_day(now, zone)
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=zone)
    totals = {first + timedelta(days=n): [0, 0] for n in range(days)}
    for row in await repository.paid_since(uow.conn, since):
        day = totals.get(ranking.shop_day(row.created_at, zone))
        if day is not None:
            day[0] += 1
            day[1] += row.paid_amount
    return [{"day": day, "orders": count, "revenue": revenue}
            for day, (count, revenue) in totals.items()]
