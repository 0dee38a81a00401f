"""A rate limit is exact across the turn of its window, in-process and in Redis.

`limits`' clock is the wall clock, so the test waits (with a bound) for a moment just before
a second turns, makes the limit's three attempts, waits for the turn and tries a fourth well
inside one second of the first. The sliding window counter this replaced let that fourth
through (it rounds the last window's weighted share down)."""

from __future__ import annotations

import time
import uuid

import pytest

from ecommerce.platform.errors import RateLimited
from ecommerce.platform.ratelimit import RateLimit, make_limiter, make_storage
from tests.waiting import until

ATTEMPTS = 5  # a busy machine may spend a whole second on one try; it is tried again


@pytest.fixture(params=["memory", "redis"])
def storage_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url")


async def test_the_fourth_attempt_within_a_second_is_refused_across_the_turn(storage_url):
    limit = RateLimit("turn", "3/second", make_limiter(
        make_storage(storage_url, prefix=f"test-{uuid.uuid4().hex[:8]}")))
    for attempt in range(ATTEMPTS):
        who = f"user-{attempt}"
        await until(lambda: 0.6 <= time.time() % 1 < 0.8, what="late in a second",
                    seconds=5, every=0.005)
        first = time.time()
        for _ in range(3):
            await limit.hit(who)
        turn = int(first) + 1
        await until(lambda turn=turn: time.time() >= turn, what="the second turned", seconds=5,
                    every=0.005)
        try:
            await limit.hit(who)
        except RateLimited:
            return
        if time.time() - first < 1:  # a fourth within one second of the first went through
            pytest.fail("the fourth attempt within one second was let through")
    pytest.skip("the machine never made four attempts within one second")


async def test_attempts_a_window_apart_are_allowed_again(storage_url):
    limit = RateLimit("again", "2/second", make_limiter(
        make_storage(storage_url, prefix=f"test-{uuid.uuid4().hex[:8]}")))
    await limit.hit("erin")
    second_hit = time.time()
    await limit.hit("erin")
    with pytest.raises(RateLimited) as refused:
        await limit.hit("erin")
    assert int(refused.value.headers["Retry-After"]) >= 1
    await until(lambda: time.time() > second_hit + 1.05, what="a window after the second hit",
                seconds=10, every=0.01)
    await limit.hit("erin")  # both earlier attempts are out of the window now
