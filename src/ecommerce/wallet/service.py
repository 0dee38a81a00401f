"""The prepaid balance: every change is a conditional update plus a ledger entry, together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecommerce.accounts.errors import UserNotFound
from ecommerce.platform.database import UnitOfWork
from ecommerce.wallet import repository
from ecommerce.wallet.errors import (
    BalanceLimitExceeded,
    InsufficientBalance,
    TooManyUnpaidOrders,
)
from ecommerce.wallet.models import BALANCE_CAP


async def open_wallet(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    """A new user's wallet, at 0."""
    await repository.create(uow.conn, user_id, now)


async def balance_of(uow: UnitOfWork, user_id: int) -> int:
    """The balance, or UserNotFound."""
    balance = await repository.get_balance(uow.conn, user_id)
    if balance is None:
        raise UserNotFound()
    return balance


async def recharge(uow: UnitOfWork, user_id: int, amount: int, now: datetime, *,
                   payment_id: int | None = None) -> int:
    """Top up; returns the new balance. Never passes the cap. `payment_id`: the card
    payment it was bought with (the ledger takes each payment once)."""
    new_balance = await repository.add(uow.conn, user_id, amount, now, cap=BALANCE_CAP)
    if new_balance is None:
        await balance_of(uow, user_id)  # raises UserNotFound if that is the reason
        raise BalanceLimitExceeded()
    await repository.append_ledger(uow.conn, user_id, "RECHARGE", amount, new_balance, None, now,
                                   payment_id=payment_id)
    return new_balance


async def check_room(uow: UnitOfWork, user_id: int, amount: int) -> None:
    """BalanceLimitExceeded now if a recharge of `amount` could not be credited."""
    if await balance_of(uow, user_id) + amount > BALANCE_CAP:
        raise BalanceLimitExceeded()


async def pay_order(uow: UnitOfWork, user_id: int, amount: int, order_id: int, now: datetime,
                    *, unpaid_limit: int | None = None) -> None:
    """An order's balance part, never below 0 (InsufficientBalance), with its PAYMENT
    entry (none when it is 0: an order paid all by card or by a coupon). A card order not
    paid yet (`unpaid_limit`) also counts as one of the user's unpaid card orders, at most
    that many (TooManyUnpaidOrders)."""
    if unpaid_limit is None and amount == 0:
        return
    new_balance = await repository.add(uow.conn, user_id, -amount, now,
                                       unpaid=1 if unpaid_limit is not None else 0,
                                       unpaid_limit=unpaid_limit)
    if new_balance is None:
        held = await repository.get(uow.conn, user_id)
        if held is None:
            raise UserNotFound()
        if held.balance < amount:
            raise InsufficientBalance()
        raise TooManyUnpaidOrders(f"You have {held.unpaid_card_orders} card orders waiting "
                                  "for payment: pay or cancel one of them first")
    if amount:
        await repository.append_ledger(uow.conn, user_id, "PAYMENT", -amount, new_balance,
                                       order_id, now)


async def refund_order(uow: UnitOfWork, user_id: int, amount: int, order_id: int,
                       now: datetime, *, unpaid: bool = False) -> None:
    """Give an order's balance part back, with its REFUND entry (none for 0); `unpaid`:
    the order was one of the user's unpaid card orders, and is no longer."""
    if amount == 0 and not unpaid:
        return
    new_balance = await repository.add(uow.conn, user_id, amount, now,
                                       unpaid=-1 if unpaid else 0)
    if new_balance is None:
        raise UserNotFound()
    if amount:
        await repository.append_ledger(uow.conn, user_id, "REFUND", amount, new_balance,
                                       order_id, now)


async def order_paid(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    """A card order was paid: it is no longer one of the user's unpaid ones."""
    if not await repository.count_unpaid(uow.conn, user_id, -1, now):
        raise UserNotFound()


async def history(uow: UnitOfWork, user_id: int, limit: int, offset: int
                  ) -> tuple[Sequence[Any], int]:
    """Ledger entries newest first, and their total count."""
    await balance_of(uow, user_id)
    return (await repository.history(uow.conn, user_id, limit, offset),
            await repository.history_count(uow.conn, user_id))


async def audit(uow: UnitOfWork) -> list[str]:
    """Invariant 1: every balance is >= 0 and equals the sum of its ledger."""
    return [f"wallet of user {row.user_id}: balance {row.balance} but ledger sums to "
            f"{row.ledger_total}" for row in await repository.mismatched_wallets(uow.conn)]
