"""Password hashing (argon2id) and access tokens (JWT, HS256, with expiry)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ecommerce.platform.clock import Clock
from ecommerce.platform.errors import ServerBusy
from ecommerce.platform.principal import Principal, bearer_token
from ecommerce.platform.settings import Settings

ALGORITHM = "HS256"
log = logging.getLogger("ecommerce.accounts")
PASSWORD_THREAD_NICE = 10
T = TypeVar("T")


class Passwords:
    """Argon2 hashing, off the event loop, with a bound on how many hashes run at once.

    A hash is memory-hard and CPU-heavy on purpose, so a flood of logins (right or wrong)
    would take every core and queue every other request behind it. At most
    `PASSWORD_CHECKS` hashes run per process, each on one thread (parallelism 1: the cost
    is memory and time, and one lane leaves the other core to the shop), and
    `PASSWORD_CHECKS_WAITING` more may queue; past that the caller is answered at once
    with 503 and Retry-After (ServerBusy). `refuse_if_full` lets a caller refuse before it
    does any other work (a login's user lookup)."""

    def __init__(self, settings: Settings):
        self._hasher = PasswordHasher(time_cost=settings.argon2_time_cost,
                                      memory_cost=settings.argon2_memory_kib, parallelism=1)
        # Verifying against this when the user does not exist keeps timing uniform.
        self._dummy = self._hasher.hash("not-a-real-password")
        self._slots = asyncio.Semaphore(settings.password_checks)
        # Their own threads, at a lower CPU priority than the event loop's: a busy core
        # serves requests first and hashes with what is left.
        self._threads = ThreadPoolExecutor(max_workers=settings.password_checks,
                                           thread_name_prefix="argon2",
                                           initializer=_lower_priority)
        self._admitted = 0
        self._capacity = settings.password_checks + settings.password_checks_waiting

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._bounded(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored or self._dummy, password) and stored is not None
            except (VerificationError, InvalidHashError):
                return False

        return await self._bounded(check)

    def needs_rehash(self, stored: str) -> bool:
        """Whether a hash that checked was made with other parameters than today's (a
        login then stores it again with today's)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return False

    def refuse_if_full(self) -> None:
        """ServerBusy now if a check asked for now would be refused."""
        if self._admitted >= self._capacity:
            raise ServerBusy("Too many sign-ins are being checked right now; retry shortly")

    async def _bounded(self, work: Callable[..., T], *args: Any) -> T:
        self.refuse_if_full()
        self._admitted += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(
                    self._threads, work, *args)
        finally:
            self._admitted -= 1


def _lower_priority() -> None:
    # On Linux a nice value is per thread: this lowers only the hashing thread's priority
    # (never raises it, which would need privileges).
    if sys.platform == "linux":
        try:
            current = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, 0, max(current, PASSWORD_THREAD_NICE))
        except OSError:  # not permitted here: hash at the normal priority
            pass


class Tokens:
    """Access tokens: HS256 JWTs with the user, role, expiry and the user's token version
    (`ver`): a password or role change raises the version, and every token issued before
    it stops working (TokenVersions)."""

    # Tokens whose signature and claims were checked, with their expiry: a token is sent
    # with every request of its holder, and checking it again cost about 80 microseconds
    # (PyJWT: base64, JSON, HMAC). Only tokens this shop signed get in; at the bound the
    # whole map is dropped (a miss only costs the check again).
    VERIFIED_MAX = 20_000

    def __init__(self, settings: Settings, clock: Clock):
        self._key = settings.signing_key()
        self.ttl = settings.jwt_ttl_seconds
        self._clock = clock
        self._verified: dict[str, tuple[int, Principal]] = {}

    def issue(self, user_id: int, role: str, now: datetime, version: int = 0) -> str:
        claims = {"sub": str(user_id), "role": role, "ver": version, "iat": now,
                  "exp": now + timedelta(seconds=self.ttl)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def from_header(self, authorization: str | None) -> Principal | None:
        """The caller an `Authorization` header names as far as the token itself says, or
        None (missing, not Bearer, or a token that is bad or expired). Whether its version
        is still the user's is TokenVersions'."""
        token = bearer_token(authorization)
        return self.read(token) if token is not None else None

    def read(self, token: str) -> Principal | None:
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify(token)
            if verified is None:
                return None
            if len(self._verified) >= self.VERIFIED_MAX:
                self._verified.clear()
            self._verified[token] = verified
        expires, principal = verified
        # Expiry is checked against the app's clock (the one that issued the token), on
        # every read.
        return principal if expires > self._clock.now().timestamp() else None

    def _verify(self, token: str) -> tuple[int, Principal] | None:
        """A token's expiry and caller, if this shop signed it and its claims are whole."""
        try:
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub"], "verify_exp": False,
                                         "verify_iat": False})
            role = claims.get("role")
            version = claims.get("ver", 0)
            if role not in ("CUSTOMER", "ADMIN") or type(version) is not int:
                return None
            return int(claims["exp"]), Principal(int(claims["sub"]), role, version)
        except (jwt.PyJWTError, ValueError, TypeError):
            return None


Changed = Callable[[datetime | None], Awaitable[list[tuple[int, int, datetime]]]]


class TokenVersions:
    """Each user's token version, as every request checks it, kept in the process.

    Versions start at 0 and only rise (a password or role change). The process keeps the
    versions of the users whose version rose, read at start and then, every `interval`
    seconds, only those changed since it last looked (`changed(since)`, a read of its own
    on an index): a request compares its token's version with the map, a dictionary
    lookup, and never reads the database itself. A change made in this process counts at
    once; one made elsewhere within `interval` (plus the read), on every process."""

    SKEW = timedelta(seconds=30)  # hosts' clocks may differ: look back this much further

    def __init__(self, changed: Changed, clock: Clock, interval: float = 1.0):
        self._changed = changed
        self._clock = clock
        self.interval = interval
        self._versions: dict[int, int] = {}
        self._since: datetime | None = None
        self._checked = float("-inf")
        self._loading: asyncio.Task[None] | None = None

    async def current(self, user_id: int) -> int:
        if self._since is None:  # the first requests wait for the first read (one read)
            if self._loading is None:
                self._start()
            assert self._loading is not None
            await asyncio.shield(self._loading)
        elif time.monotonic() - self._checked >= self.interval and self._loading is None:
            self._start()
        return self._versions.get(user_id, 0)

    def _start(self) -> None:
        self._checked = time.monotonic()
        self._loading = asyncio.create_task(self._refresh())
        self._loading.add_done_callback(self._loaded)

    def _loaded(self, task: asyncio.Task[None]) -> None:
        self._loading = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("token versions not refreshed",
                        extra={"error": type(task.exception()).__name__})

    async def _refresh(self) -> None:
        since = self._since
        newest = since
        for user_id, version, changed_at in await self._changed(
                since - self.SKEW if since is not None else None):
            if version > self._versions.get(user_id, 0):
                self._versions[user_id] = version
            newest = changed_at if newest is None else max(newest, changed_at)
        self._since = newest or since or self._clock.now()

    def raised(self, user_id: int, version: int) -> None:
        """This process raised the user's version: it counts here at once."""
        self._versions[user_id] = max(version, self._versions.get(user_id, 0))

    async def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loading
