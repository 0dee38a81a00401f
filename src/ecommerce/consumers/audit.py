"""Invariant 9: each consumer's effect happened at most once per event, and none was
skipped. A consumer's effect is recorded in its row for the event (HANDLED, with what it
was), so: one row per consumer and event, each row the event it names, a handled row says
when and what, and every event at or below a consumer's cursor has its row."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from ecommerce.consumers.models import consumer_cursors, consumer_deliveries
from ecommerce.events.models import outbox
from ecommerce.platform.database import UnitOfWork

d = consumer_deliveries


async def effects(uow: UnitOfWork) -> list[str]:
    conn = uow.conn
    problems = []
    twice = await conn.execute(select(d.c.consumer, d.c.event_id, func.count())
                               .group_by(d.c.consumer, d.c.event_id)
                               .having(func.count() > 1))
    problems += [f"{row.consumer} recorded event {row.event_id} {row[2]} times"
                 for row in twice]
    joined = d.outerjoin(outbox, outbox.c.id == d.c.outbox_id)
    strays = await conn.execute(select(d.c.consumer, d.c.outbox_id, d.c.event_id)
                                .select_from(joined)
                                .where(or_(outbox.c.id.is_(None),
                                           outbox.c.event_id != d.c.event_id)))
    problems += [f"{row.consumer} has a row for outbox event {row.outbox_id} that is not "
                 f"event {row.event_id}" for row in strays]
    unrecorded = await conn.execute(select(d.c.consumer, d.c.event_id).where(
        d.c.status == "HANDLED", or_(d.c.handled_at.is_(None), d.c.outcome.is_(None))))
    problems += [f"{row.consumer} handled event {row.event_id} without saying when or what"
                 for row in unrecorded]
    skipped = await conn.execute(
        select(consumer_cursors.c.consumer, outbox.c.event_id)
        .select_from(consumer_cursors.join(outbox, outbox.c.id <= consumer_cursors.c.position))
        .where(~select(d.c.outbox_id).where(and_(d.c.consumer == consumer_cursors.c.consumer,
                                                 d.c.outbox_id == outbox.c.id)).exists())
        .limit(100))
    problems += [f"{row.consumer} passed event {row.event_id} without handling it"
                 for row in skipped]
    return problems
