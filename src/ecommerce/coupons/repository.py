"""Every query on coupons, held coupons and the coupon ledger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    and_,
    any_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.coupons.models import coupon_events, coupons, user_coupons
from ecommerce.platform.database import shop_refusal
from ecommerce.platform.types import naive_utc


async def add_coupon(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(coupons).values(**values))
    return int(result.inserted_primary_key[0])


async def get_by_code(conn: AsyncConnection, code: str) -> Any:
    return (await conn.execute(select(coupons).where(coupons.c.code == code))).first()


async def list_coupons(conn: AsyncConnection, limit: int, offset: int) -> Sequence[Any]:
    return (await conn.execute(select(coupons).order_by(coupons.c.id.desc())
                               .limit(limit).offset(offset))).all()


async def count_coupons(conn: AsyncConnection, condition: Any = None) -> int:
    query = select(func.count()).select_from(coupons)
    if condition is not None:
        query = query.where(condition)
    return (await conn.execute(query)).scalar_one()


def claimable(now: datetime) -> Any:
    """Coupons a customer can claim now: in their issue window, not expired, not sold out."""
    return and_(open_or_upcoming(now), coupons.c.issue_starts_at <= now,
                coupons.c.issued_quantity < coupons.c.total_quantity)


def open_or_upcoming(now: datetime) -> Any:
    """Coupons whose issue window and validity have not ended (sold out ones included)."""
    return and_(or_(coupons.c.issue_ends_at.is_(None), coupons.c.issue_ends_at > now),
                or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > now))


async def list_where(conn: AsyncConnection, condition: Any, limit: int, offset: int
                     ) -> Sequence[Any]:
    return (await conn.execute(select(coupons).where(condition)
                               .order_by(coupons.c.issue_starts_at.desc(), coupons.c.id.desc())
                               .limit(limit).offset(offset))).all()


async def with_holders(conn: AsyncConnection, code: str, user_ids: list[int], *,
                       lock: bool) -> tuple[Any, set[int]]:
    """The coupon (None if there is no such code) and which of these users hold it, in one
    query. `lock`: the coupon's row stays locked until the transaction ends (FOR NO KEY
    UPDATE on PostgreSQL, so that rows referring to it are not held up; SQLite's write
    transactions are serial anyway)."""
    among = (user_coupons.c.user_id == any_(bindparam("users", user_ids,
                                                       type_=ARRAY(BigInteger)))
             if conn.dialect.name == "postgresql"  # one statement text for every batch size
             else user_coupons.c.user_id.in_(user_ids))
    query = (select(coupons, user_coupons.c.user_id.label("holder"))
             .outerjoin(user_coupons, and_(user_coupons.c.coupon_id == coupons.c.id, among))
             .where(coupons.c.code == code))
    if lock:
        query = query.with_for_update(of=coupons, key_share=True)
    rows = (await conn.execute(query)).all()
    if not rows:
        return None, set()
    return rows[0], {row.holder for row in rows if row.holder is not None}


def _window_guard(first: datetime, last: datetime) -> Any:
    return and_(coupons.c.issue_starts_at <= first,
                or_(coupons.c.issue_ends_at.is_(None), coupons.c.issue_ends_at > last),
                or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > last))


async def take(conn: AsyncConnection, coupon_id: int, count: int, first: datetime,
               last: datetime) -> bool:
    """Count `count` more issued if that many are left and the claim window was open from
    `first` to `last` (the claims' times); False if not (what the caller read is stale).
    The conditional UPDATE takes the coupon's row lock, before the holder rows' foreign-key
    checks would take a shared one (on InnoDB, two batches holding shared locks and both
    wanting the exclusive one deadlock)."""
    result = await conn.execute(
        update(coupons)
        .where(coupons.c.id == coupon_id,
               coupons.c.issued_quantity + count <= coupons.c.total_quantity,
               _window_guard(first, last))
        .values(issued_quantity=coupons.c.issued_quantity + count))
    return result.rowcount == 1


async def add_held(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Holder rows (for distinct users) in one statement; their ids, in the order given.
    Raises IntegrityError if a user already holds the coupon (unique key) or does not
    exist."""
    # RETURNING with the user, not in parameter order: ordered, SQLAlchemy would send one
    # statement per row on SQLite and MariaDB; this way it is one multi-row INSERT.
    result = await conn.execute(
        insert(user_coupons).returning(user_coupons.c.user_id, user_coupons.c.id),
        [{**row, "status": "AVAILABLE"} for row in rows])
    held = {row.user_id: row.id for row in result}
    return [int(held[row["user_id"]]) for row in rows]


async def add_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await conn.execute(insert(coupon_events), rows)


class Stale(Exception):  # noqa: N818 - a signal: decide again, under the row lock
    """Fewer coupons were left, or the window had changed, when the winners were written."""


# The function's code: this file, applied by migration 0007 (see its header).
ISSUE_COUPONS_SQL = (Path(__file__).parent / "issue_coupons.sql").read_text(encoding="utf-8")
_ISSUE = text("SELECT user_id, held_id FROM shop_issue_coupons(:coupon, :users, :issued, "
              ":expires)")


async def issue_in_one_call(conn: AsyncConnection, coupon_id: int,
                            winners: list[dict[str, Any]]) -> list[int]:
    """PostgreSQL: the winners' writes in one round trip (issue_coupons.sql); their holder
    row ids, in the order given. Stale if the guard refused (nothing was written);
    IntegrityError if a holder row was refused."""
    try:
        rows = (await conn.execute(_ISSUE, {
            "coupon": coupon_id, "users": [w["user_id"] for w in winners],
            "issued": [naive_utc(w["issued_at"]) for w in winners],
            "expires": [naive_utc(w["expires_at"]) for w in winners]})).all()
    except DBAPIError as error:
        if (shop_refusal(error) or ("",))[0] == "STALE":
            raise Stale() from None
        raise
    held = {row.user_id: row.held_id for row in rows}
    return [int(held[w["user_id"]]) for w in winners]


async def add_event(conn: AsyncConnection, user_coupon_id: int, coupon_id: int, user_id: int,
                    kind: str, order_id: int | None, now: datetime) -> None:
    await conn.execute(insert(coupon_events).values(
        user_coupon_id=user_coupon_id, coupon_id=coupon_id, user_id=user_id, kind=kind,
        order_id=order_id, created_at=now))


async def holds(conn: AsyncConnection, coupon_id: int, user_id: int) -> bool:
    return (await conn.execute(select(user_coupons.c.id).where(
        user_coupons.c.coupon_id == coupon_id, user_coupons.c.user_id == user_id))
    ).first() is not None


async def holders(conn: AsyncConnection, coupon_id: int) -> list[int]:
    return list((await conn.execute(select(user_coupons.c.user_id)
                                    .where(user_coupons.c.coupon_id == coupon_id))).scalars())


_HELD_COLUMNS = (
    user_coupons.c.id.label("user_coupon_id"), coupons.c.code.label("coupon_code"),
    coupons.c.name, coupons.c.discount_type, coupons.c.discount_value,
    coupons.c.max_discount_amount, coupons.c.min_order_amount, user_coupons.c.status,
    user_coupons.c.issued_at, user_coupons.c.expires_at, user_coupons.c.used_at,
    user_coupons.c.order_id, user_coupons.c.coupon_id, user_coupons.c.user_id,
)


def _held_filter(user_id: int, status: str | None, now: datetime) -> Any:
    condition = user_coupons.c.user_id == user_id
    if status == "USED":
        condition = and_(condition, user_coupons.c.status == "USED")
    elif status == "AVAILABLE":
        condition = and_(condition, user_coupons.c.status == "AVAILABLE",
                         user_coupons.c.expires_at > now)
    elif status == "EXPIRED":
        condition = and_(condition, user_coupons.c.status == "AVAILABLE",
                         user_coupons.c.expires_at <= now)
    return condition


async def held_by_user(conn: AsyncConnection, user_id: int, status: str | None, now: datetime,
                       limit: int, offset: int) -> Sequence[Any]:
    return (await conn.execute(
        select(*_HELD_COLUMNS).join(coupons, coupons.c.id == user_coupons.c.coupon_id)
        .where(_held_filter(user_id, status, now))
        .order_by(user_coupons.c.id.desc()).limit(limit).offset(offset))).all()


async def count_held(conn: AsyncConnection, user_id: int, status: str | None,
                     now: datetime) -> int:
    return (await conn.execute(select(func.count()).select_from(user_coupons)
                               .where(_held_filter(user_id, status, now)))).scalar_one()


async def held_for_use(conn: AsyncConnection, user_id: int, code: str) -> Any:
    return (await conn.execute(
        select(*_HELD_COLUMNS).join(coupons, coupons.c.id == user_coupons.c.coupon_id)
        .where(user_coupons.c.user_id == user_id, coupons.c.code == code))).first()


async def held_by_id(conn: AsyncConnection, user_coupon_id: int) -> Any:
    return (await conn.execute(select(user_coupons).where(user_coupons.c.id == user_coupon_id))
            ).first()


async def mark_used(conn: AsyncConnection, user_coupon_id: int, order_id: int,
                    now: datetime) -> bool:
    result = await conn.execute(
        update(user_coupons)
        .where(user_coupons.c.id == user_coupon_id, user_coupons.c.status == "AVAILABLE",
               user_coupons.c.expires_at > now)
        .values(status="USED", used_at=now, order_id=order_id))
    return result.rowcount == 1


async def mark_available(conn: AsyncConnection, user_coupon_id: int, order_id: int) -> bool:
    result = await conn.execute(
        update(user_coupons)
        .where(user_coupons.c.id == user_coupon_id, user_coupons.c.status == "USED",
               user_coupons.c.order_id == order_id)
        .values(status="AVAILABLE", used_at=None, order_id=None))
    return result.rowcount == 1


async def mismatched_counts(conn: AsyncConnection) -> Sequence[Any]:
    held = (select(user_coupons.c.coupon_id, func.count().label("held"))
            .group_by(user_coupons.c.coupon_id).subquery())
    count = func.coalesce(held.c.held, 0)
    return (await conn.execute(
        select(coupons.c.code, coupons.c.issued_quantity, coupons.c.total_quantity,
               count.label("held"))
        .select_from(coupons.outerjoin(held, held.c.coupon_id == coupons.c.id))
        .where((coupons.c.issued_quantity != count)
               | (coupons.c.issued_quantity > coupons.c.total_quantity)))).all()


async def duplicate_holders(conn: AsyncConnection) -> Sequence[Any]:
    return (await conn.execute(
        select(user_coupons.c.coupon_id, user_coupons.c.user_id, func.count().label("n"))
        .group_by(user_coupons.c.coupon_id, user_coupons.c.user_id)
        .having(func.count() > 1))).all()
