"""Kafka clients from the settings (aiokafka): the connection and security options every
client shares, and the events topic made when it is missing."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

from ecommerce.platform.settings import Settings

log = logging.getLogger("ecommerce.kafka")

# What a broker that is down, restarting or unreachable raises.
KAFKA_DOWN: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError)


def options(settings: Settings, client: str) -> dict[str, Any]:
    """The options of an aiokafka client of this shop (producer, consumer or admin)."""
    assert settings.kafka_bootstrap_servers
    found: dict[str, Any] = {
        "bootstrap_servers": [server.strip() for server
                              in settings.kafka_bootstrap_servers.split(",") if server.strip()],
        "client_id": f"ecommerce-{client}",
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": int(settings.kafka_timeout_seconds * 1000),
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        found["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_sasl_mechanism:
        found |= {"sasl_mechanism": settings.kafka_sasl_mechanism,
                  "sasl_plain_username": settings.kafka_sasl_username,
                  "sasl_plain_password": settings.kafka_sasl_password}
    return found


async def ensure_topic(settings: Settings) -> None:
    """Make the events topic if it is missing, before any client names it (a broker that
    makes topics on first use would make it with its own defaults)."""
    admin = AIOKafkaAdminClient(**options(settings, "admin"))
    await admin.start()
    try:
        if settings.topic in await admin.list_topics():
            return
        replicas = settings.kafka_replication_factor
        if replicas is None:
            brokers = (await admin.describe_cluster())["brokers"]
            replicas = max(1, min(3, len(brokers)))
        answer = await admin.create_topics([NewTopic(settings.topic,
                                                     settings.kafka_partitions, replicas)])
        for _topic, code, *message in answer.topic_errors:
            if code == TopicAlreadyExistsError.errno:  # another process made it just now
                continue
            if code:
                raise for_code(code)(f"cannot make topic {settings.topic}: {message}")
        log.info("made the events topic", extra={"topic": settings.topic,
                                                 "partitions": settings.kafka_partitions,
                                                 "replicas": replicas})
    finally:
        await admin.close()
