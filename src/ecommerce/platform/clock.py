"""The clock: one place that says what time it is, so tests can move it."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)
        self.frozen: datetime | None = None

    def now(self) -> datetime:
        """Aware UTC now (plus any offset a test set)."""
        if self.frozen is not None:
            return self.frozen
        return datetime.now(UTC) + self.offset

    def freeze(self, moment: datetime) -> None:
        """Make now() read exactly `moment` until unfrozen or moved."""
        self.frozen = moment

    def advance(self, delta: timedelta) -> None:
        self.offset += delta
        if self.frozen is not None:
            self.frozen += delta

    def travel_to(self, moment: datetime) -> None:
        """Make now() read `moment` (and run on from there)."""
        self.frozen = None
        self.offset = moment - datetime.now(UTC)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
