"""The prepaid balance: every change is a conditional update plus a ledger entry, together."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecommerce.accounts.errors import UserNotFound
from ecommerce.platform.database import UnitOfWork
from ecommerce.wallet import repository
from ecommerce.wallet.errors import BalanceLimitExceeded, InsufficientBalance
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


async def pay(uow: UnitOfWork, user_id: int, amount: int, order_id: int, now: datetime) -> int:
    """Charge an order; returns the new balance. Never below 0."""
    new_balance = await repository.add(uow.conn, user_id, -amount, now)
    if new_balance is None:
        await balance_of(uow, user_id)
        raise InsufficientBalance()
    await repository.append_ledger(uow.conn, user_id, "PAYMENT", -amount, new_balance, order_id,
                                   now)
    return new_balance


async def record_zero_payment(uow: UnitOfWork, user_id: int, order_id: int,
                              now: datetime) -> None:
    """A fully discounted order: its PAYMENT entry of 0, so every order has one."""
    balance = await balance_of(uow, user_id)
    await repository.append_ledger(uow.conn, user_id, "PAYMENT", 0, balance, order_id, now)


async def refund(uow: UnitOfWork, user_id: int, amount: int, order_id: int, now: datetime) -> int:
    """Give an order's payment back; returns the new balance."""
    new_balance = await repository.add(uow.conn, user_id, amount, now)
    if new_balance is None:
        raise UserNotFound()
    await repository.append_ledger(uow.conn, user_id, "REFUND", amount, new_balance, order_id, now)
    return new_balance


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
