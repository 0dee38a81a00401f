"""Password hashing (argon2id) and access tokens (JWT, HS256, with expiry)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
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
    def __init__(self, settings: Settings, clock: Clock):
        self._key = settings.signing_key()
        self.ttl = settings.jwt_ttl_seconds
        self._clock = clock

    def issue(self, user_id: int, role: str, now: datetime) -> str:
        claims = {"sub": str(user_id), "role": role, "iat": now,
                  "exp": now + timedelta(seconds=self.ttl)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def from_header(self, authorization: str | None) -> Principal | None:
        """The caller an `Authorization` header names, or None (missing, not Bearer, or a
        token that is bad or expired). Every adapter reads the caller through this."""
        token = bearer_token(authorization)
        return self.read(token) if token is not None else None

    def read(self, token: str) -> Principal | None:
        try:
            # Expiry is checked against the app's clock (the one that issued the token).
            claims = jwt.decode(token, self._key, algorithms=[ALGORITHM],
                                options={"require": ["exp", "sub"], "verify_exp": False,
                                         "verify_iat": False})
            if int(claims["exp"]) <= self._clock.now().timestamp():
                return None
            role = claims.get("role")
            if role not in ("CUSTOMER", "ADMIN"):
                return None
            return Principal(int(claims["sub"]), role)
        except (jwt.PyJWTError, ValueError, TypeError):
            return None
