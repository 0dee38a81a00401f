"""The clock: one place that says what time it is, so tests can move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        """Aware UTC now (plus any offset a test set)."""
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def travel_to(self, moment: datetime) -> None:
        """Make now() read `moment` (and run on from there)."""
        self.offset = moment - datetime.now(UTC)
