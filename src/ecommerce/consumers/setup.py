"""Which consumers run, from the settings: `data-platform` when DATA_PLATFORM_URL is set,
`email` when SMTP_URL is."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ecommerce.consumers.data_platform import DataPlatform
from ecommerce.consumers.email import Email
from ecommerce.consumers.runner import Consumer, Runner
from ecommerce.events.publisher import Publisher

if TYPE_CHECKING:
    from ecommerce.context import AppContext

NAMES = (DataPlatform.name, Email.name)


def consumers(ctx: AppContext, only: str | None = None) -> list[Consumer]:
    settings = ctx.settings
    found: list[Consumer] = []
    if settings.data_platform_url:
        found.append(DataPlatform(settings))
    if settings.smtp_url:
        found.append(Email(settings, ctx.db, ctx.clock))
    return [consumer for consumer in found if only is None or consumer.name == only]


def start(ctx: AppContext, stop: asyncio.Event, only: str | None = None
          ) -> list[asyncio.Task[None]]:
    """The consumers' runners (and, with Redis, the stream publisher) as tasks until stop."""
    tasks = [asyncio.create_task(Runner(consumer, ctx.db, ctx.settings, ctx.redis,
                                        ctx.clock).run_forever(stop))
             for consumer in consumers(ctx, only)]
    if ctx.redis is not None:
        publisher = Publisher(ctx.db, ctx.settings, ctx.redis, ctx.clock)
        tasks.append(asyncio.create_task(publisher.run_forever(stop)))
    return tasks
