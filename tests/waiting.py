"""Waiting for a state, with a bound: a test never waits for a fixed time (a busy machine
makes every step slower, never a state arrive sooner)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

# Long enough for a machine under any load CI sees; a state that is never reached still
# fails the test, saying which.
BOUND_SECONDS = 120.0


async def until(check: Callable[[], Any], *, what: str, seconds: float = BOUND_SECONDS,
                every: float = 0.05) -> Any:
    """Poll `check` (sync or async) until it returns something true, and return it;
    AssertionError naming `what` if `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {seconds:g} s")
        await asyncio.sleep(every)


def until_sync(check: Callable[[], Any], *, what: str, seconds: float = BOUND_SECONDS,
               every: float = 0.05) -> Any:
    """`until` for code that is not async (fixtures that start processes)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {seconds:g} s")
        time.sleep(every)
