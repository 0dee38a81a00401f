"""Every query on wallets and the balance ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.wallet.models import balance_ledger, wallets


async def create(conn: AsyncConnection, user_id: int, now: datetime) -> None:
    await conn.execute(insert(wallets).values(user_id=user_id, balance=0, updated_at=now))


async def get_balance(conn: AsyncConnection, user_id: int) -> int | None:
    return (await conn.execute(
        select(wallets.c.balance).where(wallets.c.user_id == user_id))).scalar()


async def get(conn: AsyncConnection, user_id: int) -> Any:
    return (await conn.execute(select(wallets).where(wallets.c.user_id == user_id))).first()


async def add(conn: AsyncConnection, user_id: int, delta: int, now: datetime,
              cap: int | None = None, *, unpaid: int = 0, unpaid_limit: int | None = None
              ) -> int | None:
    """Change a balance by `delta` if it stays >= 0 (and <= cap), and the count of unpaid
    card orders by `unpaid` (staying below `unpaid_limit` when given); the new balance,
    else None.

    One conditional UPDATE: the row lock it takes orders concurrent changes, and the
    SELECT after it reads this transaction's own write."""
    conditions = [wallets.c.user_id == user_id, wallets.c.balance + delta >= 0]
    if cap is not None:
        conditions.append(wallets.c.balance + delta <= cap)
    values: dict[str, Any] = {"balance": wallets.c.balance + delta, "updated_at": now}
    if unpaid:
        values["unpaid_card_orders"] = wallets.c.unpaid_card_orders + unpaid
        if unpaid_limit is not None:
            conditions.append(wallets.c.unpaid_card_orders < unpaid_limit)
    result = await conn.execute(update(wallets).where(*conditions).values(**values))
    if result.rowcount != 1:
        return None
    return await get_balance(conn, user_id)


async def count_unpaid(conn: AsyncConnection, user_id: int, change: int, now: datetime
                       ) -> bool:
    """Change only the count of unpaid card orders (no money moves, so no balance to
    read back): whether the wallet was there."""
    result = await conn.execute(_COUNT_UNPAID, {"_user_id": user_id, "_change": change,
                                                "_now": now})
    return bool(result.rowcount == 1)


_COUNT_UNPAID = update(wallets).where(wallets.c.user_id == bindparam("_user_id")).values(
    unpaid_card_orders=wallets.c.unpaid_card_orders + bindparam("_change", type_=Integer),
    updated_at=bindparam("_now", type_=wallets.c.updated_at.type))


async def append_ledger(conn: AsyncConnection, user_id: int, kind: str, amount: int,
                        balance_after: int, order_id: int | None, now: datetime, *,
                        payment_id: int | None = None) -> None:
    await conn.execute(insert(balance_ledger).values(
        user_id=user_id, type=kind, amount=amount, balance_after=balance_after,
        order_id=order_id, created_at=now, payment_id=payment_id))


async def history(conn: AsyncConnection, user_id: int, limit: int, offset: int) -> Sequence[Any]:
    return (await conn.execute(
        select(balance_ledger).where(balance_ledger.c.user_id == user_id)
        .order_by(balance_ledger.c.id.desc()).limit(limit).offset(offset))).all()


async def history_count(conn: AsyncConnection, user_id: int) -> int:
    return (await conn.execute(select(func.count()).select_from(balance_ledger)
                               .where(balance_ledger.c.user_id == user_id))).scalar_one()


async def mismatched_wallets(conn: AsyncConnection) -> Sequence[Any]:
    """Wallets whose balance is negative or differs from the sum of their ledger."""
    ledger_sum = (select(balance_ledger.c.user_id, func.sum(balance_ledger.c.amount).label("total"))
                  .group_by(balance_ledger.c.user_id).subquery())
    total = func.coalesce(ledger_sum.c.total, 0)
    return (await conn.execute(
        select(wallets.c.user_id, wallets.c.balance, total.label("ledger_total"))
        .select_from(wallets.outerjoin(ledger_sum, ledger_sum.c.user_id == wallets.c.user_id))
        .where((wallets.c.balance < 0) | (wallets.c.balance != total)))).all()
