"""An order priced once: every rule that decides what an order costs and how it is paid
(listed products at today's prices, the held coupon's discount, the balance and card
parts, a card order's limits), applied to what the database says now, without a lock. The
value it makes is what the writer writes (orders/writer.py), what the answer shows and what
`order.completed` says; the writer's guarded statements check that nothing it relied on
changed meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ecommerce.accounts.errors import UserNotFound
from ecommerce.catalog import service as catalog
from ecommerce.coupons import service as coupons
from ecommerce.orders import repository
from ecommerce.orders.errors import UnpaidOrderTooLarge
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.errors import InvalidRequest


@dataclass(frozen=True)
class CardTerms:
    """How far a customer's unpaid card orders may go: how long they hold, how many one
    customer may have, how many units one may hold, and what share of a product's units
    they may hold together (the rest stays for buyers who pay at once)."""

    hold_seconds: int = 600
    per_user: int = 3
    max_quantity: int = 100
    stock_percent: int = 50


@dataclass(frozen=True)
class Line:
    product_id: int
    name: str
    unit_price: int
    quantity: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class HeldCoupon:
    user_coupon_id: int
    coupon_id: int
    code: str


@dataclass(frozen=True)
class PricedOrder:
    """What an order costs and how it is paid, decided once."""

    user_id: int
    lines: tuple[Line, ...]  # by product id
    total: int  # the subtotal at today's prices
    coupon: HeldCoupon | None
    discount: int
    balance_part: int
    card_part: int
    placed_at: datetime
    day: date  # the shop-calendar day it is placed on (its sales' day)
    card: CardTerms | None  # a card order's limits (None: paid at once)

    @property
    def paid(self) -> int:
        return self.total - self.discount

    @property
    def by_card(self) -> bool:
        return self.card_part > 0

    @property
    def status(self) -> str:
        return "PAYMENT_PENDING" if self.by_card else "PAID"

    @property
    def method(self) -> str:
        return "CARD" if self.by_card else "BALANCE"

    @property
    def quantities(self) -> list[tuple[int, int]]:
        return [(line.product_id, line.quantity) for line in self.lines]


@dataclass(frozen=True)
class Quoted:
    """The rows pricing read: the buyer's balance and each product as it stood."""

    balance: int
    products: dict[int, Any]


async def price(uow: UnitOfWork, *, user_id: int, lines: Sequence[tuple[int, int]],
                coupon_code: str | None, now: datetime, day: date,
                card: CardTerms | None = None, balance_amount: int = 0
                ) -> tuple[PricedOrder, Quoted]:
    """Price an order of (product_id, quantity) lines (merged, by product id). By card
    (`card`): `balance_amount` from the balance (at most what is to be paid), the rest by
    card; nothing left for the card makes it an order paid from the balance. UserNotFound,
    ProductNotFound (unlisted), CouponNotUsable, InvalidRequest or UnpaidOrderTooLarge if
    it cannot be placed as asked."""
    balance, rows = await repository.quote(uow.conn, user_id, [pid for pid, _ in lines])
    if balance is None:
        raise UserNotFound()  # before anything else
    catalog.check_listed(rows, lines)
    priced = tuple(Line(pid, rows[pid].name, rows[pid].price, qty) for pid, qty in lines)
    total = sum(line.line_total for line in priced)
    held, discount = None, 0
    if coupon_code is not None:
        usable = await coupons.usable(uow, user_id, coupon_code, total, now)
        applied = coupons.applied(usable, total)
        held = HeldCoupon(usable.user_coupon_id, usable.coupon_id, applied.code)
        discount = applied.discount
    paid = total - discount
    card_part = 0
    if card is not None:
        if balance_amount > paid:
            raise InvalidRequest(f"balanceAmount: at most the amount to pay, {paid} won")
        card_part = paid - balance_amount
        units = sum(qty for _, qty in lines)
        if card_part and units > card.max_quantity:
            raise UnpaidOrderTooLarge(
                f"An order paid by card may hold at most {card.max_quantity:,} items until "
                f"it is paid ({units:,} asked): order fewer, or pay from the balance")
    order = PricedOrder(user_id=user_id, lines=priced, total=total, coupon=held,
                        discount=discount, balance_part=paid - card_part, card_part=card_part,
                        placed_at=now, day=day, card=card if card_part else None)
    return order, Quoted(balance, rows)


def check_stock(order: PricedOrder, quoted: Quoted) -> None:
    """OutOfStock for the first line the stock read by pricing cannot cover (a quote's
    check; an order's writer checks under the row lock)."""
    for line in order.lines:
        row = quoted.products[line.product_id]
        if row.stock < line.quantity:
            raise catalog.out_of_stock(line.product_id, row.name, row.stock, line.quantity)
