"""The consumers' rows: who took which event under which lease, what came of it, and each
consumer's cursor in the outbox. Every statement takes the connection of the caller's unit
of work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.consumers.models import consumer_cursors, consumer_deliveries
from ecommerce.events.models import outbox
from ecommerce.platform.sql import insert_ignore

d = consumer_deliveries
UNFINISHED = ("WORKING", "RETRY")
FINISHED = ("HANDLED", "DEAD")


@dataclass(frozen=True)
class Event:
    """An outbox event as a consumer sees it."""

    outbox_id: int
    event_id: str
    event_type: str
    order_id: int | None
    payload: str
    created_at: datetime
    attempts: int = 0  # earlier attempts of this consumer


def events_of(rows: Iterable[Any]) -> list[Event]:
    return [Event(row.id, row.event_id, row.event_type, row.order_id, row.payload,
                  row.created_at) for row in rows]


async def outbox_rows(conn: AsyncConnection, ids: Sequence[int]) -> list[Event]:
    if not ids:
        return []
    rows = (await conn.execute(select(outbox).where(outbox.c.id.in_(ids))
                               .order_by(outbox.c.id))).all()
    return events_of(rows)


async def ids_after(conn: AsyncConnection, position: int, limit: int) -> list[int]:
    return list((await conn.execute(select(outbox.c.id).where(outbox.c.id > position)
                                    .order_by(outbox.c.id).limit(limit))).scalars())


def _untaken(consumer: str) -> Any:
    return ~exists().where(d.c.consumer == consumer, d.c.outbox_id == outbox.c.id)


async def untaken(conn: AsyncConnection, consumer: str, position: int, before: datetime,
                  limit: int) -> list[Event]:
    """Events after the cursor that this consumer has no row for, older than `before`."""
    rows = (await conn.execute(select(outbox).where(
        outbox.c.id > position, outbox.c.created_at < before, _untaken(consumer))
        .order_by(outbox.c.id).limit(limit))).all()
    return events_of(rows)


async def cursor(conn: AsyncConnection, consumer: str) -> int:
    position = (await conn.execute(select(consumer_cursors.c.position).where(
        consumer_cursors.c.consumer == consumer))).scalar()
    return int(position or 0)


async def advance_cursor(conn: AsyncConnection, consumer: str, settled_before: datetime,
                         now: datetime) -> int:
    """Move the cursor past every event that has a row and is older than `settled_before`
    (a younger id may still be joined by an older one that commits late); the position."""
    position = await cursor(conn, consumer)
    first_untaken = (await conn.execute(select(func.min(outbox.c.id)).where(
        outbox.c.id > position, _untaken(consumer)))).scalar()
    last_settled = (await conn.execute(select(func.max(outbox.c.id)).where(
        outbox.c.id > position, outbox.c.created_at < settled_before))).scalar()
    target = last_settled or position
    if first_untaken is not None:
        target = min(target, first_untaken - 1)
    if target <= position:
        return position
    moved = await conn.execute(update(consumer_cursors).where(
        consumer_cursors.c.consumer == consumer, consumer_cursors.c.position < target)
        .values(position=target, updated_at=now))
    if moved.rowcount == 0 and await _no_cursor(conn, consumer):
        await insert_ignore(conn, consumer_cursors, [{"consumer": consumer,
                                                       "position": target,
                                                       "updated_at": now}])
    return target


async def _no_cursor(conn: AsyncConnection, consumer: str) -> bool:
    return (await conn.execute(select(consumer_cursors.c.consumer).where(
        consumer_cursors.c.consumer == consumer))).first() is None


def takeable(now: datetime, horizon: datetime) -> Any:
    """A row another worker may take: its lease ran out, its retry is due, or its slow
    retry is due while it is younger than `horizon`."""
    return or_(and_(d.c.status == "WORKING", d.c.locked_until < now),
               and_(d.c.status == "RETRY", d.c.next_attempt_at <= now),
               and_(d.c.status == "DEAD", d.c.next_attempt_at <= now,
                    d.c.created_at > horizon))


async def claim(conn: AsyncConnection, consumer: str, events: Sequence[Event], lease: str,
                now: datetime, lease_seconds: float, horizon: datetime) -> list[Event]:
    """Take these events under `lease`: the new ones, and the ones whose lease ran out or
    whose retry is due; the taken ones with their earlier attempts."""
    if not events:
        return []
    by_id = {event.outbox_id: event for event in events}
    ids = sorted(by_id)  # one order for every worker: they wait on each other, never deadlock
    until = now + timedelta(seconds=lease_seconds)
    known = set((await conn.execute(select(d.c.outbox_id).where(
        d.c.consumer == consumer, d.c.outbox_id.in_(ids)))).scalars())
    new = [event_id for event_id in ids if event_id not in known]
    if new:  # (inserting only these keeps MySQL from warning about each one that exists)
        await insert_ignore(conn, d, [{
            "consumer": consumer, "outbox_id": event_id, "event_id": by_id[event_id].event_id,
            "status": "WORKING", "attempts": 0, "next_attempt_at": None, "lease": lease,
            "locked_until": until, "created_at": now} for event_id in new])
    if known:  # rows that were there before: take the ones free to take
        await conn.execute(update(d).where(d.c.consumer == consumer,
                                           d.c.outbox_id.in_(sorted(known)),
                                           or_(d.c.lease.is_(None), d.c.lease != lease),
                                           takeable(now, horizon))
                           .values(status="WORKING", lease=lease, locked_until=until))
    taken = (await conn.execute(select(d.c.outbox_id, d.c.attempts).where(
        d.c.consumer == consumer, d.c.outbox_id.in_(ids), d.c.lease == lease))).all()
    return [_with_attempts(by_id[row.outbox_id], row.attempts)
            for row in sorted(taken, key=lambda row: row.outbox_id)]


def _with_attempts(event: Event, attempts: int) -> Event:
    return Event(event.outbox_id, event.event_id, event.event_type, event.order_id,
                 event.payload, event.created_at, attempts)


async def due(conn: AsyncConnection, consumer: str, now: datetime, horizon: datetime,
              limit: int) -> list[int]:
    """Rows to take again: retries that are due, and leases that ran out."""
    return list((await conn.execute(select(d.c.outbox_id).where(
        d.c.consumer == consumer, takeable(now, horizon)).order_by(d.c.outbox_id).limit(limit))
    ).scalars())


async def earlier_unfinished(conn: AsyncConnection, consumer: str, events: Sequence[Event]
                             ) -> set[tuple[int, int]]:
    """(order id, outbox id) of every event of these orders, older than the newest of
    them, that this consumer has not finished (no row, or one still working or retrying)."""
    orders = {event.order_id for event in events if event.order_id is not None}
    if not orders:
        return set()
    newest = max(event.outbox_id for event in events)
    joined = outbox.outerjoin(d, and_(d.c.consumer == consumer, d.c.outbox_id == outbox.c.id))
    rows = (await conn.execute(select(outbox.c.order_id, outbox.c.id).select_from(joined)
                               .where(outbox.c.order_id.in_(orders), outbox.c.id < newest,
                                      or_(d.c.status.is_(None),
                                          d.c.status.in_(UNFINISHED))))).all()
    return {(row.order_id, row.id) for row in rows}


async def settle(conn: AsyncConnection, consumer: str, lease: str, outbox_id: int,
                 values: dict[str, Any]) -> bool:
    """Record an outcome, if the lease is still ours."""
    result = await conn.execute(update(d).where(d.c.consumer == consumer,
                                                d.c.outbox_id == outbox_id, d.c.lease == lease)
                                .values(lease=None, locked_until=None, **values))
    return result.rowcount == 1


async def settle_handled(conn: AsyncConnection, consumer: str, lease: str,
                         handled: list[tuple[int, str]], now: datetime) -> None:
    """Record many handled events (outbox id, what the effect was) in one statement run
    for each (executemany), where the lease is still ours."""
    if not handled:
        return
    statement = update(d).where(d.c.consumer == consumer, d.c.lease == lease,
                                d.c.outbox_id == bindparam("b_outbox_id")).values(
        status="HANDLED", handled_at=now, outcome=bindparam("b_outcome"), last_error=None,
        next_attempt_at=None, lease=None, locked_until=None)
    await conn.execute(statement, [{"b_outbox_id": outbox_id, "b_outcome": outcome}
                                   for outbox_id, outcome in handled])


async def retry_dead(conn: AsyncConnection, consumer: str, outbox_id: int, now: datetime
                     ) -> bool:
    result = await conn.execute(update(d).where(d.c.consumer == consumer,
                                                d.c.outbox_id == outbox_id,
                                                d.c.status == "DEAD")
                                .values(status="RETRY", attempts=0, next_attempt_at=now))
    return result.rowcount == 1


async def delivery(conn: AsyncConnection, consumer: str, outbox_id: int) -> Any:
    return (await conn.execute(select(d).where(d.c.consumer == consumer,
                                               d.c.outbox_id == outbox_id))).first()


async def event_by_id(conn: AsyncConnection, event_id: str) -> Any:
    return (await conn.execute(select(outbox).where(outbox.c.event_id == event_id))).first()


async def stats(conn: AsyncConnection, consumer: str) -> tuple[int, int, int]:
    """(lag, pending, dead): lag counts the events this consumer has not finished, of them
    pending the ones taken and working or waiting for a retry; dead apart."""
    position = await cursor(conn, consumer)
    counts = dict((await conn.execute(select(d.c.status, func.count()).where(
        d.c.consumer == consumer, d.c.status.in_(("WORKING", "RETRY", "DEAD")))
        .group_by(d.c.status))).all())
    untaken_count = (await conn.execute(select(func.count()).select_from(outbox).where(
        outbox.c.id > position, _untaken(consumer)))).scalar_one()
    pending = int(counts.get("WORKING", 0)) + int(counts.get("RETRY", 0))
    return untaken_count + pending, pending, int(counts.get("DEAD", 0))


async def dead(conn: AsyncConnection, consumer: str, limit: int, offset: int
               ) -> tuple[list[Any], int]:
    where = (d.c.consumer == consumer, d.c.status == "DEAD")
    joined = d.join(outbox, outbox.c.id == d.c.outbox_id)
    rows = (await conn.execute(select(d, outbox.c.event_type, outbox.c.order_id,
                                      outbox.c.created_at.label("occurred_at"))
                               .select_from(joined).where(*where)
                               .order_by(d.c.outbox_id.desc()).limit(limit).offset(offset))
            ).all()
    total = (await conn.execute(select(func.count()).select_from(d).where(*where))
             ).scalar_one()
    return list(rows), total


def _delivery_view(consumer: str) -> tuple[Any, list[Any]]:
    """The outbox joined with one consumer's rows, and the columns of the admin's view of
    each event: DELIVERED when handled, FAILED when dead, PENDING otherwise (not taken yet,
    working or retrying)."""
    joined = outbox.outerjoin(d, and_(d.c.consumer == consumer, d.c.outbox_id == outbox.c.id))
    status = case((d.c.status == "HANDLED", literal("DELIVERED")),
                  (d.c.status == "DEAD", literal("FAILED")), else_=literal("PENDING"))
    return joined, [outbox.c.id, outbox.c.event_id, outbox.c.event_type, outbox.c.order_id,
                    outbox.c.created_at, outbox.c.streamed_at, status.label("status"),
                    func.coalesce(d.c.attempts, 0).label("attempts"), d.c.next_attempt_at,
                    d.c.last_error, d.c.handled_at.label("delivered_at")]


async def events_for(conn: AsyncConnection, consumer: str, types: Iterable[str],
                     status: str | None, limit: int, offset: int) -> tuple[list[Any], int]:
    """The outbox's events of these types, newest first, with one consumer's delivery of
    each."""
    joined, columns = _delivery_view(consumer)
    where = [outbox.c.event_type.in_(list(types))]
    if status == "DELIVERED":
        where.append(d.c.status == "HANDLED")
    elif status == "FAILED":
        where.append(d.c.status == "DEAD")
    elif status == "PENDING":
        where.append(or_(d.c.status.is_(None), d.c.status.in_(UNFINISHED)))
    rows = (await conn.execute(select(*columns).select_from(joined).where(*where)
                               .order_by(outbox.c.id.desc()).limit(limit).offset(offset))).all()
    total = (await conn.execute(select(func.count()).select_from(joined).where(*where))
             ).scalar_one()
    return list(rows), total


async def event_for(conn: AsyncConnection, consumer: str, types: Iterable[str],
                    outbox_id: int) -> Any:
    joined, columns = _delivery_view(consumer)
    return (await conn.execute(select(*columns).select_from(joined).where(
        outbox.c.id == outbox_id, outbox.c.event_type.in_(list(types))))).first()
