"""Accounts: sign up, log in, change a password, look up, the admin account, and who a
request's token names. Password hashing runs outside any transaction, so these open their
units of work themselves; the FastAPI routes, the lean paths, the CLI and the seed are
adapters over them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from ecommerce.accounts import repository
from ecommerce.accounts.errors import InvalidCredentials, UsernameTaken, UserNotFound
from ecommerce.accounts.schemas import MeOut
from ecommerce.accounts.security import Passwords, Tokens, TokenVersions
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.principal import Principal
from ecommerce.platform.ratelimit import RateLimit

# What else a new account gets, in the transaction that creates it (its wallet): given by
# the composition root, so accounts needs to know nothing of what hangs off a user.
SignedUp = Callable[[UnitOfWork, int, datetime], Awaitable[None]]


def normalise(username: str) -> str:
    # Usernames are case-insensitive everywhere (MySQL's collation would make them so anyway).
    return username.strip().lower()


@dataclass(frozen=True)
class Limits:
    """Login attempts per (username, address), failures per username from anywhere, and
    sign-ups per address (no limit: the RateLimit's item is None)."""

    login_per_address: RateLimit
    login_per_account: RateLimit
    signup_per_address: RateLimit


class Accounts:
    def __init__(self, db: Database, passwords: Passwords, tokens: Tokens, clock: Clock,
                 limits: Limits | None = None, *, signed_up: SignedUp | None = None,
                 version_interval: float = 1.0):
        self.db = db
        self.passwords = passwords
        self.tokens = tokens
        self.clock = clock
        self.limits = limits
        self.signed_up = signed_up
        self.versions = TokenVersions(self._changed, clock, version_interval)

    async def _changed(self, since: datetime | None) -> list[tuple[int, int, datetime]]:
        async with self.db.uow(write=False) as uow:
            return await repository.versions_changed_since(uow.conn, since)

    async def caller(self, authorization: str | None) -> Principal | None:
        """Who a request's `Authorization` header names: a valid token whose version is
        still its user's, or None. Every adapter reads the caller through this."""
        principal = self.tokens.from_header(authorization)
        if principal is None or await self.versions.current(principal.user_id) != \
                principal.version:
            return None
        return principal

    async def sign_up(self, username: str, password: str, role: str = "CUSTOMER",
                      email: str | None = None, *, client: str | None = None) -> int:
        """Create a user (and what the shop opens with one, its empty wallet), with the
        e-mail for order notices if given; the new user id. Limited per client address."""
        if client is not None and self.limits is not None:
            await self.limits.signup_per_address.hit(client)
        password_hash = await self.passwords.hash(password)
        now = self.clock.now()
        try:
            async with self.db.uow() as uow:
                user_id = await repository.add_user(uow.conn, normalise(username),
                                                    password_hash, role, now, email)
                if self.signed_up is not None:
                    await self.signed_up(uow, user_id, now)
        except IntegrityError:
            raise UsernameTaken() from None
        return user_id

    async def log_in(self, username: str, password: str, *, client: str = "unknown"
                     ) -> tuple[str, int]:
        """Check the password within the login limits; (access token, user id).

        The per-account limit counts failures whether or not the account exists, so its
        429 says nothing about which usernames are real."""
        name = normalise(username)
        self.passwords.refuse_if_full()  # before anything is counted or read
        if self.limits is not None:
            await self.limits.login_per_address.hit(name, client)
            await self.limits.login_per_account.check(name)
        async with self.db.uow(write=False) as uow:
            user = await repository.get_by_username(uow.conn, name)
        if not await self.passwords.verify(user.password_hash if user else None,
                                           password) or not user:
            if self.limits is not None:
                await self.limits.login_per_account.hit(name)
            raise InvalidCredentials()
        if self.passwords.needs_rehash(user.password_hash):  # hashed with older parameters
            new = await self.passwords.hash(password)
            async with self.db.uow() as uow:
                await repository.rehash(uow.conn, user.id, user.password_hash, new)
        return self.tokens.issue(user.id, user.role, self.clock.now(),
                                 user.token_version), user.id

    async def change_password(self, caller: Principal, current: str, new: str
                              ) -> tuple[str, int]:
        """The caller's new password, once the current one checks; every token issued
        before stops working, and a new one is answered."""
        async with self.db.uow(write=False) as uow:
            user = await repository.get_by_id(uow.conn, caller.user_id)
        if user is None:
            raise UserNotFound()
        if not await self.passwords.verify(user.password_hash, current):
            raise InvalidCredentials("The current password is wrong")
        password_hash = await self.passwords.hash(new)
        now = self.clock.now()
        async with self.db.uow() as uow:
            version = await repository.set_credentials(uow.conn, user.id, now,
                                                       password_hash=password_hash)
        self.versions.raised(user.id, version)
        return self.tokens.issue(user.id, user.role, now, version), user.id

    async def me(self, caller: Principal) -> MeOut:
        """The caller's own account."""
        async with self.db.uow(write=False) as uow:
            user = await repository.get_by_id(uow.conn, caller.user_id)
        if user is None:
            raise UserNotFound()
        return _me(user)

    async def update_me(self, caller: Principal, email: str | None) -> MeOut:
        """Set (or, with None, remove) the caller's e-mail for order notices."""
        async with self.db.uow() as uow:
            if not await repository.set_email(uow.conn, caller.user_id, email):
                raise UserNotFound()
            user = await repository.get_by_id(uow.conn, caller.user_id)
        return _me(user)

    async def ensure_admin(self, username: str, password: str) -> int:
        """Make `username` an admin with this password, creating the account if needed;
        tokens the account had before stop working."""
        async with self.db.uow(write=False) as uow:
            existing = await repository.get_by_username(uow.conn, normalise(username))
        if existing is not None:
            password_hash = await self.passwords.hash(password)
            async with self.db.uow() as uow:
                version = await repository.set_credentials(
                    uow.conn, existing.id, self.clock.now(), password_hash=password_hash,
                    role="ADMIN")
            self.versions.raised(existing.id, version)
            return int(existing.id)
        try:
            return await self.sign_up(username, password, role="ADMIN")
        except UsernameTaken:  # another process created it a moment ago
            return await self.ensure_admin(username, password)

    async def close(self) -> None:
        await self.versions.close()


def _me(user: Any) -> MeOut:
    return MeOut(user_id=user.id, username=user.username, role=user.role, email=user.email,
                 created_at=user.created_at)
