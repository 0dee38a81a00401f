"""Which broker the settings choose, and the settings a broker needs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ecommerce.platform.kafka import options
from ecommerce.platform.settings import Settings


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch):
    """These tests read the defaults: none of the settings the shell (CI sets
    REDIS_URL and DATABASE_URL) may have exported."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_default_broker_is_redis_with_redis_else_the_outbox():
    assert settings().broker == "outbox"
    assert settings(redis_url="redis://127.0.0.1:6379").broker == "redis"
    assert settings(redis_url="redis://r", event_broker="outbox").broker == "outbox"
    assert settings(event_broker="kafka", kafka_bootstrap_servers="k:9092").broker == "kafka"
    assert settings(event_broker="").broker == "outbox"  # an empty variable is unset


@pytest.mark.parametrize("values, message", [
    ({"event_broker": "kafka"}, "needs KAFKA_BOOTSTRAP_SERVERS"),
    ({"event_broker": "redis"}, "needs REDIS_URL"),
    ({"event_broker": "rabbit"}, "kafka', 'redis' or 'outbox"),
    ({"event_broker": "kafka", "kafka_bootstrap_servers": "k:9092",
      "kafka_security_protocol": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
    ({"event_broker": "kafka", "kafka_bootstrap_servers": "k:9092",
      "kafka_sasl_mechanism": "PLAIN"}, "needs KAFKA_SASL_USERNAME"),
    ({"kafka_partitions": 0}, "greater than or equal to 1"),
])
def test_a_broker_without_what_it_needs_is_refused_at_start(values, message):
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_the_topic_and_a_managed_kafkas_options():
    plain = settings(event_broker="kafka", kafka_bootstrap_servers=" k1:9092, k2:9092 ",
                     redis_prefix="shop")
    assert plain.topic == "shop.orders"
    assert options(plain, "publisher")["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    managed = options(settings(
        event_broker="kafka", kafka_bootstrap_servers="k:9093", kafka_topic="t",
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="shop", kafka_sasl_password="secret"), "consumer")
    assert (managed["security_protocol"], managed["sasl_mechanism"],
            managed["sasl_plain_username"], managed["sasl_plain_password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "shop", "secret")
    assert managed["ssl_context"] is not None
