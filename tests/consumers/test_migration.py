"""Migration 0010 on a shop that already has events: the data platform's delivery state
moves from the outbox's columns to its consumer's rows, the e-mail consumer starts past the
old events, and back down again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from ecommerce.consumers.models import consumer_cursors, consumer_deliveries
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import downgrade, upgrade
from tests.backends import create_database, drop_database


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
async def fresh_url(request):
    url = await create_database(request.param)
    try:
        yield url
    finally:
        await drop_database(request.param, url)


async def test_upgrading_a_shop_with_events_keeps_what_was_delivered(fresh_url):
    upgrade(fresh_url, "0009")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).replace(tzinfo=None)
    db = Database(fresh_url, pool_size=1)
    try:
        async with db.uow() as uow:
            for n, (status, attempts) in enumerate(
                    [("DELIVERED", 1), ("FAILED", 10), ("PENDING", 2), ("PENDING", 0),
                     ("PENDING", 0)], start=1):
                await uow.conn.execute(text(
                    "INSERT INTO outbox (event_id, event_type, order_id, payload, status, "
                    "attempts, next_attempt_at, created_at, delivered_at, last_error) VALUES "
                    "(:event_id, 'order.completed', :n, '{}', :status, :attempts, :at, :at, "
                    ":delivered, :error)"), {
                        "event_id": f"00000000-0000-0000-0000-00000000000{n}", "n": n,
                        "status": status, "attempts": attempts, "at": now,
                        "delivered": now + timedelta(seconds=1) if status == "DELIVERED"
                        else None, "error": None if status == "DELIVERED" else "HTTP 500"})
        upgrade(fresh_url)
        async with db.uow(write=False) as uow:
            rows = (await uow.conn.execute(select(
                consumer_deliveries.c.consumer, consumer_deliveries.c.outbox_id,
                consumer_deliveries.c.status, consumer_deliveries.c.attempts)
                .order_by(consumer_deliveries.c.consumer, consumer_deliveries.c.outbox_id))
            ).all()
            cursors = dict((await uow.conn.execute(select(
                consumer_cursors.c.consumer, consumer_cursors.c.position))).all())
        assert [tuple(row) for row in rows] == [
            ("data-platform", 1, "HANDLED", 1), ("data-platform", 2, "DEAD", 10),
            ("data-platform", 3, "RETRY", 2),
            *[("email", n, "HANDLED", 0) for n in range(1, 6)]]
        # The data platform picks up at its oldest event never tried; e-mail after them all.
        assert cursors == {"data-platform": 3, "email": 5}
        downgrade(fresh_url, "0009")
        async with db.uow(write=False) as uow:
            statuses = (await uow.conn.execute(text(
                "SELECT status FROM outbox ORDER BY id"))).scalars().all()
        assert statuses == ["DELIVERED", "PENDING", "PENDING", "PENDING", "PENDING"]
        upgrade(fresh_url)
    finally:
        await db.dispose()
