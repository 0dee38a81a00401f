"""Every query on the payments and stray approvals tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.payments.models import payments, stray_approvals
from ecommerce.platform.sql import insert_ignore, move_status


async def add(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(payments).values(**values))
    return int(result.inserted_primary_key[0])


_BY_ID = select(payments).where(payments.c.id == bindparam("payment_id"))
_OF_ORDER = select(payments).where(payments.c.order_id == bindparam("order_id"))


async def get(conn: AsyncConnection, payment_id: int) -> Any:
    return (await conn.execute(_BY_ID, {"payment_id": payment_id})).first()


async def of_order(conn: AsyncConnection, order_id: int) -> Any:
    return (await conn.execute(_OF_ORDER, {"order_id": order_id})).first()


async def of_orders(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, Any]:
    if not order_ids:
        return {}
    rows = (await conn.execute(select(payments).where(payments.c.order_id.in_(order_ids)))
            ).all()
    return {row.order_id: row for row in rows}


async def by_pg_order_id(conn: AsyncConnection, pg_order_id: str) -> Any:
    return (await conn.execute(select(payments).where(payments.c.pg_order_id == pg_order_id))
            ).first()


async def move(conn: AsyncConnection, payment_id: int, from_statuses: Sequence[str],
               status: str, values: dict[str, Any]) -> bool:
    """Set the status (and values) if it is one of `from_statuses` (the payment row's lock,
    taken first by every move of a payment and what it pays for): whether it was."""
    return await move_status(conn, payments, payment_id, from_statuses, status, values)


async def due(conn: AsyncConnection, status: str, before: datetime, column: str,
              limit: int) -> Sequence[Any]:
    """Payments in `status` whose `column` is before `before`, oldest first."""
    moment = payments.c[column]
    return (await conn.execute(
        select(payments).where(payments.c.status == status, moment < before)
        .order_by(moment).limit(limit))).all()


async def failed_by_lookup(conn: AsyncConnection, codes: Sequence[str], before: datetime,
                           since: datetime, limit: int) -> Sequence[Any]:
    """FAILED payments whose failure a lookup decided (one of `codes`), last looked at
    before `before` and created since `since`, oldest look first."""
    return (await conn.execute(
        select(payments).where(payments.c.status == "FAILED",
                               payments.c.failure_code.in_(codes),
                               payments.c.attempted_at < before,
                               payments.c.created_at >= since)
        .order_by(payments.c.attempted_at).limit(limit))).all()


async def touch(conn: AsyncConnection, payment_id: int, status: str, now: datetime) -> None:
    """Note that the gateway was asked about it now (if it is still in `status`)."""
    await conn.execute(update(payments).where(payments.c.id == payment_id,
                                              payments.c.status == status)
                       .values(attempted_at=now))


def _filter(status: str | None, kind: str | None) -> Any:
    conditions = []
    if status is not None:
        conditions.append(payments.c.status == status)
    if kind is not None:
        conditions.append(payments.c.kind == kind)
    return and_(True, *conditions)


async def search(conn: AsyncConnection, status: str | None, kind: str | None, limit: int,
                 offset: int) -> tuple[Sequence[Any], int]:
    rows = (await conn.execute(select(payments).where(_filter(status, kind))
                               .order_by(payments.c.id.desc()).limit(limit).offset(offset))).all()
    total = (await conn.execute(select(func.count()).select_from(payments)
                                .where(_filter(status, kind)))).scalar_one()
    return rows, total


async def all_payments(conn: AsyncConnection) -> Sequence[Any]:
    return (await conn.execute(select(payments).order_by(payments.c.id))).all()


# Stray approvals --------------------------------------------------------------------------

async def add_stray(conn: AsyncConnection, payment_id: int, payment_key: str, amount: int,
                    now: datetime) -> bool:
    """Record an approval to refund (once per key: False if it was known already). Its
    first refund is due at once."""
    return await insert_ignore(conn, stray_approvals, [{
        "payment_id": payment_id, "payment_key": payment_key, "amount": amount,
        "status": "REFUNDING", "found_at": now, "attempted_at": now}]) == 1


async def strays_of(conn: AsyncConnection, payment_ids: Sequence[int]) -> Sequence[Any]:
    if not payment_ids:
        return []
    return (await conn.execute(select(stray_approvals).where(
        stray_approvals.c.payment_id.in_(payment_ids)).order_by(stray_approvals.c.id))).all()


async def strays_due(conn: AsyncConnection, before: datetime, limit: int) -> Sequence[Any]:
    """Strays whose refund is still to be done, last asked before `before`."""
    return (await conn.execute(
        select(stray_approvals).where(stray_approvals.c.status == "REFUNDING",
                                      stray_approvals.c.attempted_at < before)
        .order_by(stray_approvals.c.attempted_at).limit(limit))).all()


def _refunding(payment_key: str) -> Any:
    return and_(stray_approvals.c.payment_key == payment_key,
                stray_approvals.c.status == "REFUNDING")


async def stray_tried(conn: AsyncConnection, payment_key: str, now: datetime) -> None:
    await conn.execute(update(stray_approvals).where(_refunding(payment_key))
                       .values(attempted_at=now))


async def stray_refunded(conn: AsyncConnection, payment_key: str, now: datetime) -> bool:
    result = await conn.execute(update(stray_approvals).where(_refunding(payment_key))
                                .values(status="REFUNDED", refunded_at=now))
    return result.rowcount == 1


async def all_strays(conn: AsyncConnection) -> Sequence[Any]:
    return (await conn.execute(select(stray_approvals).order_by(stray_approvals.c.id))).all()
