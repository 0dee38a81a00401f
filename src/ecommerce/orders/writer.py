"""How a priced order is written: one interface, two implementations, chosen once when
the app starts (`choose`): statement by statement on every database (`PortableWriter`),
or, on PostgreSQL where the shop's function is installed, all of it in one call of
`shop_place_order` (`FunctionWriter`, place_order.sql). Both take the same locks in the
same order (the held coupon, the wallet, then the products by id), guard each write the
same way and refuse with the same errors; tests/orders/test_place_order_function.py runs
one matrix of orders through both and compares every row they write.

A one-statement writer also writes the order's Idempotency-Key (`uow.claim`) with its
answer, which the caller gives with "orderId" 0 standing for the new order's id."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ecommerce.catalog import service as catalog
from ecommerce.catalog.errors import ProductNotFound
from ecommerce.catalog.listing import Listings
from ecommerce.coupons import service as coupons
from ecommerce.coupons.errors import CouponNotUsable
from ecommerce.events import outbox
from ecommerce.orders import repository
from ecommerce.orders.pricing import PricedOrder
from ecommerce.orders.service import completed
from ecommerce.platform.database import Database, RetryTransaction, UnitOfWork
from ecommerce.platform.idempotency import KeyTaken
from ecommerce.platform.types import naive_utc
from ecommerce.ranking import service as ranking
from ecommerce.wallet import service as wallet
from ecommerce.wallet.errors import InsufficientBalance, TooManyUnpaidOrders

log = logging.getLogger("ecommerce.orders")


class OrderWriter(Protocol):
    name: str
    one_statement: bool  # a balance order is written in one statement (no BEGIN needed)

    async def write(self, uow: UnitOfWork, order: PricedOrder, listings: Listings,
                    answer: tuple[int, dict[str, Any]] | None = None) -> int:
        """Write the order (its holds, and for one paid at once its sale and
        `order.completed`); the new order's id. Any refusal leaves nothing written.
        `answer`: what placing it answers ("orderId" 0), written as the answer of the
        Idempotency-Key a one-statement writer is given (`uow.claim`)."""


class PortableWriter:
    """Each write its own statement (SQLite, MySQL, and PostgreSQL without the function)."""

    name = "portable"
    one_statement = False

    async def write(self, uow: UnitOfWork, order: PricedOrder, listings: Listings,
                    answer: tuple[int, dict[str, Any]] | None = None) -> int:
        now = order.placed_at
        order_id = await repository.add_order(uow.conn, order)
        if order.coupon is not None:
            await coupons.use_held(uow, order.coupon.user_coupon_id, order.coupon.coupon_id,
                                   order.user_id, order_id, now)
        await wallet.pay_order(uow, order.user_id, order.balance_part, order_id, now,
                               unpaid_limit=order.card.per_user if order.card else None)
        await catalog.take_stock(
            uow, listings, [(line.product_id, line.quantity, line.unit_price)
                            for line in order.lines], order_id, now,
            hold_percent=order.card.stock_percent if order.card else None)
        # After the stock: the items' foreign-key check would otherwise take a shared lock
        # on the product rows first, and InnoDB deadlocks two orders that both then want them.
        await repository.add_items(uow.conn, order_id, order.lines)
        if not order.by_card:
            await ranking.record_sale(uow, order.quantities, order.day)
            uow.record(completed(order, order_id))
        return order_id


class FunctionWriter:
    """PostgreSQL: every write in one round trip, `shop_place_order` (place_order.sql)."""

    name = "shop_place_order"
    one_statement = True

    async def write(self, uow: UnitOfWork, order: PricedOrder, listings: Listings,
                    answer: tuple[int, dict[str, Any]] | None = None) -> int:
        event = None if order.by_card else outbox.row(completed(order, 0))
        card = order.card
        claim = uow.claim
        if claim is not None and answer is None:
            raise AssertionError("a keyed order written in one statement needs its answer")
        try:
            order_id, stocks = await repository.place_in_one_call(uow.conn, {
                "user_id": order.user_id,
                "now": naive_utc(order.placed_at),
                "day": order.day, "products": [line.product_id for line in order.lines],
                "quantities": [line.quantity for line in order.lines],
                "prices": [line.unit_price for line in order.lines],
                "names": [line.name for line in order.lines],
                "total": order.total, "discount": order.discount,
                "user_coupon_id": order.coupon.user_coupon_id if order.coupon else None,
                "coupon_id": order.coupon.coupon_id if order.coupon else None,
                "coupon_code": order.coupon.code if order.coupon else None,
                "event_id": event["event_id"] if event else None,
                "event": event["payload"] if event else None,
                "method": order.method, "status": order.status,
                "balance": order.balance_part, "card": order.card_part,
                "unpaid_limit": card.per_user if card else None,
                "hold_percent": card.stock_percent if card else None,
                **_key_values(claim, answer)})
        except repository.Refused as refused:
            if refused.reason == "KEY_TAKEN":
                raise KeyTaken() from None
            raise _refusal(refused) from None
        if event is not None:
            uow.wrote_events()
        listings.rows_changed(uow)
        if 0 in stocks:
            await listings.changed(uow)
        return order_id


_ID_STANDS_IN = '{"orderId":0,'  # its 0 replaced by the order's id in place_order.sql


def _key_values(claim: Any, answer: tuple[int, dict[str, Any]] | None) -> dict[str, Any]:
    """The function's key arguments: the claimed key and its answer's text, or nulls."""
    if claim is None or answer is None:
        return {"key_user": None, "key": None, "fingerprint": None, "key_at": None,
                "answer_status": None, "answer": None}
    status, body = answer
    text = orjson.dumps(body).decode()
    if not text.startswith(_ID_STANDS_IN):
        raise AssertionError("an order's answer starts with its orderId, 0 until written")
    return {"key_user": claim.user_id, "key": claim.key, "fingerprint": claim.fingerprint,
            "key_at": naive_utc(claim.created_at),
            "answer_status": status, "answer": text}


def _refusal(refused: repository.Refused) -> Exception:
    """The error `shop_place_order` stands for: the same as the portable writer's."""
    reason, detail = refused.reason, refused.detail or ""
    if reason == "PRICE_CHANGED":
        return RetryTransaction()
    if reason == "COUPON_USED":
        return CouponNotUsable(coupons.ALREADY_USED)
    if reason == "INSUFFICIENT_BALANCE":
        return InsufficientBalance()
    if reason == "UNPAID_ORDERS_LIMIT":
        return TooManyUnpaidOrders(f"You have {detail} card orders waiting for payment: pay "
                                   "or cancel one of them first")
    if reason == "PRODUCT_NOT_FOUND":
        return ProductNotFound(f"No product {detail}")
    if reason == "OUT_OF_STOCK":
        product_id, name, stock, quantity = orjson.loads(detail)
        return catalog.out_of_stock(product_id, name, stock, quantity)
    if reason == "STOCK_ON_HOLD":
        product_id, name = orjson.loads(detail)
        return catalog.on_hold(product_id, name)
    raise AssertionError(f"shop_place_order raised {reason}")


# The function's signature as this code calls it: a database holding another one (an older
# migration's) is written to by the portable writer.
_INSTALLED = text(
    "SELECT count(*) FROM pg_proc WHERE proname = 'shop_place_order' AND pronargs = 26")


async def choose(db: Database) -> OrderWriter:
    """The writer for this database, decided once when the app starts (or, if the
    database cannot be asked then, when the first order is written)."""
    if db.dialect != "postgresql":
        return PortableWriter()
    try:
        async with db.uow(write=False) as uow:
            installed = (await uow.conn.execute(_INSTALLED)).scalar_one()
    except (OSError, DBAPIError) as error:
        log.warning("order writer not chosen yet: the database did not answer",
                    extra={"error": type(error).__name__})
        return _Undecided(db)
    log.info("order writer chosen", extra={"writer": FunctionWriter.name if installed
                                           else PortableWriter.name})
    return FunctionWriter() if installed else PortableWriter()


class _Undecided:
    """Chooses on the first order, then is that writer."""

    name = "undecided"
    one_statement = False

    def __init__(self, db: Database):
        self._db = db
        self._chosen: OrderWriter | None = None

    async def write(self, uow: UnitOfWork, order: PricedOrder, listings: Listings,
                    answer: tuple[int, dict[str, Any]] | None = None) -> int:
        if self._chosen is None:
            chosen = await choose(self._db)
            if not isinstance(chosen, _Undecided):
                self._chosen = chosen
                self.name, self.one_statement = chosen.name, chosen.one_statement
            else:
                chosen = PortableWriter()  # writes like the function, a statement at a time
        return await (self._chosen or chosen).write(uow, order, listings, answer)
