"""Which consumers run, from the settings: `data-platform` when DATA_PLATFORM_URL is set,
`email` when SMTP_URL is."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.consumers.email import Email
from ecommerce.consumers.runner import Consumer, Runner
from ecommerce.events.publisher import KafkaSink, Publisher, Sink, StreamSink
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

NAMES = (DataPlatform.name, Email.name)


def configured(settings: Settings) -> set[str]:
    """The consumers these settings run."""
    return ({DataPlatform.name} if settings.data_platform_url else set()) | (
        {Email.name} if settings.smtp_url else set())


def consumers(settings: Settings, db: Database, clock: Clock, only: str | None = None
              ) -> list[Consumer]:
    found: list[Consumer] = []
    if settings.data_platform_url:
        found.append(DataPlatform(settings))
    if settings.smtp_url:
        found.append(Email(settings, db, clock))
    return [consumer for consumer in found if only is None or consumer.name == only]


def sink(settings: Settings, redis: Redis | None) -> Sink | None:
    """Where the publisher sends the outbox's events (EVENT_BROKER); None: nowhere, the
    consumers read the outbox."""
    if settings.broker == "kafka":
        return KafkaSink(settings)
    if settings.broker == "redis" and redis is not None:
        return StreamSink(redis, settings.stream_key)
    return None


def start(settings: Settings, db: Database, clock: Clock, redis: Redis | None,
          stop: asyncio.Event, only: str | None = None) -> list[asyncio.Task[None]]:
    """The consumers' runners (and, with a broker, the publisher) as tasks until stop."""
    tasks = [asyncio.create_task(Runner(consumer, db, settings, redis, clock)
                                 .run_forever(stop))
             for consumer in consumers(settings, db, clock, only)]
    target = sink(settings, redis)
    if target is not None:
        tasks.append(asyncio.create_task(Publisher(db, settings, target, clock)
                                         .run_forever(stop)))
    return tasks
