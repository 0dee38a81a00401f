"""Every query on the payments table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.payments.models import payments


async def add(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(payments).values(**values))
    return int(result.inserted_primary_key[0])


async def get(conn: AsyncConnection, payment_id: int) -> Any:
    return (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()


async def of_order(conn: AsyncConnection, order_id: int) -> Any:
    return (await conn.execute(select(payments).where(payments.c.order_id == order_id))
            ).first()


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
    """Set the status (and values) if it is one of `from_statuses`: whether it was."""
    result = await conn.execute(
        update(payments).where(payments.c.id == payment_id,
                               payments.c.status.in_(from_statuses))
        .values(status=status, **values))
    return result.rowcount == 1


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
