"""Every consumer test runs on each broker: the outbox (no broker), a Redis stream and a
real Kafka-protocol broker (tansu, started for the test). The outbox runs on every
database; Redis and Kafka, whose behaviour does not depend on the database, on PostgreSQL,
to keep the suite's time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.backends import REDIS_URL, RUN_ID, require
from tests.kafka import Tansu, tansu

BROKERS = ["outbox", "redis", "kafka"]


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def kafka() -> Iterator[Tansu]:
    with tansu() as server:
        yield server


@pytest.fixture
def settings_overrides(broker_overrides: dict[str, Any]) -> dict[str, Any]:
    return broker_overrides


@pytest.fixture
def broker_overrides(broker: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings of this test's broker. With one, the sweep takes events however young:
    a test's pass must not wait for a group to join; what the broker then says of them is
    skipped on their rows (the broker's own path: TestStream, TestKafka)."""
    if broker == "redis":
        return {"event_broker": "redis", "redis_url": require("redis", REDIS_URL),
                "redis_prefix": f"test:{RUN_ID}:{uuid.uuid4().hex[:6]}",
                "consumer_sweep_grace_seconds": 0}
    if broker == "kafka":
        server: Tansu = request.getfixturevalue("kafka")
        return {"event_broker": "kafka", "kafka_bootstrap_servers": server.servers,
                "kafka_partitions": 3, "consumer_sweep_grace_seconds": 0,
                "kafka_session_timeout_seconds": 2}
    return {"event_broker": "outbox"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Redis and Kafka on PostgreSQL only (the broker's part does not depend on the
    database; the outbox runs on each)."""
    dropped = [item for item in items
               if "tests/consumers/" in item.nodeid
               and getattr(item, "callspec", None) is not None
               and item.callspec.params.get("broker", "outbox") != "outbox"
               and item.callspec.params.get("database_url") != "postgres"]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]
