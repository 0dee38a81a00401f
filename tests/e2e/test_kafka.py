"""The consumers on a real Kafka-protocol broker (tansu, started for each test), as their
own processes (`ecommerce consume`, which also run the publisher) beside `ecommerce serve`:
two processes of one group share the partitions; one SIGKILLed in the middle of a burst;
the broker killed and restarted empty in the middle of a burst; orders placed while the
broker is down. The broker's part does not depend on the database: PostgreSQL only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecommerce.consumers.models import consumer_deliveries
from ecommerce.events.models import outbox
from ecommerce.standins.mail import Mailbox
from tests.consumers.test_data_platform import SECRET, sink
from tests.e2e.conftest import audit_clean, live_server, server_env
from tests.e2e.test_consumers import customers_with_mail, handled, smtp, stop
from tests.e2e.test_order_storm import codes, fire, make_products, read
from tests.kafka import Tansu, tansu
from tests.waiting import until

pytestmark = pytest.mark.databases("postgres")

PARTITIONS = 6


@contextlib.contextmanager
def consumers(env: dict[str, str], count: int, group: str | None = None
              ) -> Iterator[list[tuple[subprocess.Popen, Path]]]:
    """`count` `ecommerce consume` processes, each logging to its own file."""
    started: list[tuple[subprocess.Popen, Path]] = []
    try:
        for _ in range(count):
            started.append(start_consumer(env, group))
        yield started
    finally:
        stopping = [process for process, _log in started]
        try:
            for process in stopping:
                stop(process)
        finally:  # each one, even if another would not stop
            for process in stopping:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def start_consumer(env: dict[str, str], group: str | None = None
                   ) -> tuple[subprocess.Popen, Path]:
    log = Path(tempfile.mkdtemp()) / "consume.log"
    command = [sys.executable, "-m", "ecommerce", "consume"]
    if group:
        command += ["--group", group]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, log


def assignments(log: Path) -> dict[str, set[int]]:
    """Each consumer's partitions in this process, as its last assignment logged."""
    held: dict[str, set[int]] = {}
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("message") == "partitions assigned":
                held[entry["consumer"]] = set(entry["partitions"])
    return held


def kafka_env(database_url: str, broker: Tansu, **extra: str) -> dict[str, str]:
    return server_env(database_url, None, EVENT_BROKER="kafka",
                      KAFKA_BOOTSTRAP_SERVERS=broker.servers,
                      KAFKA_PARTITIONS=str(PARTITIONS), KAFKA_SESSION_TIMEOUT_SECONDS="3",
                      KAFKA_TIMEOUT_SECONDS="3", CONSUMER_SWEEP_SECONDS="2",
                      LOG_LEVEL="INFO", **extra)


async def burst(database_url: str, customers: list[int], item: int) -> None:
    async with live_server(database_url, workers=2) as server:
        responses = await fire(server.url, [(uid, {"userId": uid, "items": [
            {"productId": item, "quantity": 1}]}) for uid in customers])
    assert codes(responses) == {(201, "OK"): len(customers)}


async def every_event_handled(database_url: str, consumer: str, count: int) -> bool:
    return await handled(database_url, consumer) == count


async def test_two_processes_of_one_group_share_the_partitions_each_event_once(clean_db):
    ids = await customers_with_mail(clean_db, 120)
    [item] = await make_products(clean_db, (1_000, 10_000))
    mailbox = Mailbox()
    with tansu() as broker, smtp(mailbox) as port:
        async with sink() as (url, received):
            env = kafka_env(clean_db, broker, SMTP_URL=f"smtp://127.0.0.1:{port}",
                            DATA_PLATFORM_URL=url, DATA_PLATFORM_SECRET=SECRET)
            with consumers(env, 2) as started:
                logs = [log for _process, log in started]

                def shared() -> bool:  # each group's six partitions split between the two
                    held = [assignments(log) for log in logs]
                    return all(
                        all(one.get(name) for one in held)
                        and not held[0][name] & held[1][name]
                        and len(held[0][name] | held[1][name]) == PARTITIONS
                        for name in ("data-platform", "email"))

                await until(shared, what="both processes holding partitions of each group")
                await burst(clean_db, ids, item)
                for name in ("email", "data-platform"):
                    await until(lambda name=name: every_event_handled(clean_db, name, 120),
                                what=f"every event handled by {name}")
                events = received()
    assert mailbox.received == 120
    assert len({m.recipients[0] for m in mailbox.snapshot()}) == 120  # no mail twice
    stored = {row.event_id for row in await read(clean_db, select(outbox.c.event_id))}
    assert {e["eventId"] for e in events} == stored and len(stored) == 120
    await audit_clean(clean_db)


async def test_a_consumer_sigkilled_mid_burst_loses_no_mail_and_repeats_at_most_one(
        clean_db):
    ids = await customers_with_mail(clean_db, 300)
    [item] = await make_products(clean_db, (1_000, 10_000))
    mailbox = Mailbox()
    with tansu() as broker, smtp(mailbox) as port:
        env = kafka_env(clean_db, broker, SMTP_URL=f"smtp://127.0.0.1:{port}",
                        CONSUMER_LEASE_SECONDS="3")
        with consumers(env, 2, "email") as started:
            await until(lambda: all(assignments(log).get("email") for _, log in started),
                        what="both processes in the group")
            async with live_server(clean_db, workers=2) as server:
                orders = fire(server.url, [(uid, {"userId": uid, "items": [
                    {"productId": item, "quantity": 1}]}) for uid in ids])
                placing = asyncio.ensure_future(orders)
                await until(lambda: mailbox.received >= 60, what="the burst's first mails")
                victim, _log = started[0]
                victim.send_signal(signal.SIGKILL)  # in the middle of its work
                victim.wait()
                started.append(start_consumer(env, "email"))  # a replacement joins
                responses = await placing
            assert codes(responses) == {(201, "OK"): 300}
            await until(lambda: every_event_handled(clean_db, "email", 300),
                        what="every order mailed")
    recipients = [m.recipients[0] for m in mailbox.snapshot()]
    assert len(set(recipients)) == 300  # no mail lost
    # The documented window: the one mail the killed process was sending (the e-mail
    # consumer sends one at a time and records each at once) may go twice.
    assert len(recipients) - 300 <= 1
    await audit_clean(clean_db)


async def test_the_broker_restarted_empty_mid_burst_loses_nothing(clean_db):
    ids = await customers_with_mail(clean_db, 300)
    [item] = await make_products(clean_db, (1_000, 10_000))
    mailbox = Mailbox()
    with tansu() as broker, smtp(mailbox) as port:
        async with sink() as (url, received):
            env = kafka_env(clean_db, broker, SMTP_URL=f"smtp://127.0.0.1:{port}",
                            DATA_PLATFORM_URL=url, DATA_PLATFORM_SECRET=SECRET)
            with consumers(env, 2):
                for wave in range(3):
                    await burst(clean_db, ids[wave * 100:(wave + 1) * 100], item)
                    if wave < 2:
                        broker.restart()  # its topic, messages, groups and offsets gone
                for name in ("email", "data-platform"):
                    await until(lambda name=name: every_event_handled(clean_db, name, 300),
                                what=f"every event handled by {name}")
                events = received()
    assert len({m.recipients[0] for m in mailbox.snapshot()}) == 300
    stored = {row.event_id for row in await read(clean_db, select(outbox.c.event_id))}
    assert {e["eventId"] for e in events} == stored and len(stored) == 300
    await audit_clean(clean_db)


async def test_orders_flow_while_the_broker_is_down_and_their_events_follow(clean_db):
    ids = await customers_with_mail(clean_db, 60)
    [item] = await make_products(clean_db, (1_000, 10_000))
    mailbox = Mailbox()
    with tansu() as broker, smtp(mailbox) as port:
        env = kafka_env(clean_db, broker, SMTP_URL=f"smtp://127.0.0.1:{port}")
        with consumers(env, 1) as [(_process, log)]:
            await until(lambda: assignments(log).get("email"), what="the consumer running")
            broker.kill()
            await burst(clean_db, ids, item)  # every order placed: the events wait
            unpublished = await read(clean_db, select(func.count()).select_from(outbox)
                                     .where(outbox.c.streamed_at.is_(None)))
            assert unpublished[0][0] > 0
            broker.start()  # back, empty: the publisher sends what waited
            await until(lambda: every_event_handled(clean_db, "email", 60),
                        what="every order mailed")

            async def all_published() -> bool:
                rows = await read(clean_db, select(func.count()).select_from(outbox)
                                  .where(outbox.c.streamed_at.is_(None)))
                return rows[0][0] == 0

            await until(all_published, what="every waiting event published")
    assert len({m.recipients[0] for m in mailbox.snapshot()}) == 60
    assert mailbox.received == 60
    rows = await read(clean_db, select(consumer_deliveries.c.status))
    assert {row.status for row in rows} == {"HANDLED"}
    await audit_clean(clean_db)
