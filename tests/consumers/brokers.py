"""Helpers for the consumer tests on any broker."""

from __future__ import annotations

from ecommerce.consumers import setup
from ecommerce.consumers.runner import Runner
from ecommerce.events.publisher import Publisher


async def publish(runner: Runner) -> int:
    """Send the outbox's new events to the runner's broker (none: nothing to do)."""
    sink = setup.sink(runner.settings, runner.redis)
    if sink is None:
        return 0
    publisher = Publisher(runner.db, runner.settings, sink, runner.clock)
    try:
        total = 0
        while sent := await publisher.run_once():
            total += sent
        return total
    finally:
        await sink.close()


async def drain(runner: Runner) -> int:
    """Publish, then pass until a pass takes nothing; the events taken. From the first
    drain on, the runner's clock stands still (until the test moves it): an event that
    failed is due again after its backoff by that clock, never because the passes took
    long (on a busy machine five failing sends took more than the first backoff's second),
    and a test's "later than now" means later than the drain."""
    if runner.clock.frozen is None:
        runner.clock.freeze(runner.clock.now())
    await publish(runner)
    total = 0
    while taken := await runner.run_once():
        total += taken
    return total

