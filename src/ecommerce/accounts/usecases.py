"""Accounts: sign up, log in, look up, and the admin account. These are use cases, each
opening its own transactions (a password hash runs outside any of them); the FastAPI
routes, the CLI and the seed are adapters over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from ecommerce.accounts import repository
from ecommerce.accounts.errors import InvalidCredentials, UsernameTaken, UserNotFound
from ecommerce.accounts.schemas import MeOut
from ecommerce.accounts.security import Passwords, Tokens
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.principal import Principal
from ecommerce.platform.ratelimit import RateLimit
from ecommerce.wallet import service as wallet


def normalise(username: str) -> str:
    # Usernames are case-insensitive everywhere (MySQL's collation would make them so anyway).
    return username.strip().lower()


# Password hashing is slow on purpose (argon2), so these two hash outside the transaction
# and open their unit of work themselves rather than hold a connection or SQLite's write lock.


async def sign_up(db: Database, passwords: Passwords, clock: Clock, username: str,
                  password: str, role: str = "CUSTOMER", email: str | None = None) -> int:
    """Create a user with an empty wallet (and the e-mail for order notices, if given);
    returns the new user id."""
    password_hash = await passwords.hash(password)
    try:
        async with db.uow() as uow:
            user_id = await repository.add_user(uow.conn, normalise(username), password_hash,
                                                role, clock.now(), email)
            await wallet.open_wallet(uow, user_id, clock.now())
    except IntegrityError:
        raise UsernameTaken() from None
    return user_id


@dataclass(frozen=True)
class LoginLimits:
    """Attempts per (username, client address), and failures per username from anywhere."""

    per_address: RateLimit
    per_account: RateLimit


async def log_in(db: Database, passwords: Passwords, tokens: Tokens, clock: Clock,
                 username: str, password: str, *, limits: LoginLimits | None = None,
                 client: str = "unknown") -> tuple[str, int]:
    """Check the password within the login limits; returns (access token, user id).

    The per-account limit counts failures whether or not the account exists, so its 429
    says nothing about which usernames are real."""
    name = normalise(username)
    passwords.refuse_if_full()  # before anything is counted or read
    if limits is not None:
        await limits.per_address.hit(name, client)
        await limits.per_account.check(name)
    async with db.uow(write=False) as uow:
        user = await repository.get_by_username(uow.conn, name)
    if not await passwords.verify(user.password_hash if user else None, password) or not user:
        if limits is not None:
            await limits.per_account.hit(name)
        raise InvalidCredentials()
    return tokens.issue(user.id, user.role, clock.now()), user.id


async def me(db: Database, caller: Principal) -> MeOut:
    """The caller's own account."""
    async with db.uow(write=False) as uow:
        user = await repository.get_by_id(uow.conn, caller.user_id)
    if user is None:
        raise UserNotFound()
    return _me(user)


async def update_me(db: Database, caller: Principal, email: str | None) -> MeOut:
    """Set (or, with None, remove) the caller's e-mail for order notices."""
    async with db.uow() as uow:
        if not await repository.set_email(uow.conn, caller.user_id, email):
            raise UserNotFound()
        user = await repository.get_by_id(uow.conn, caller.user_id)
    return _me(user)


def _me(user: Any) -> MeOut:
    return MeOut(user_id=user.id, username=user.username, role=user.role, email=user.email,
                 created_at=user.created_at)


async def ensure_admin(db: Database, passwords: Passwords, clock: Clock, username: str,
                       password: str) -> int:
    """Make `username` an admin with this password, creating the account if needed."""
    async with db.uow(write=False) as uow:
        existing = await repository.get_by_username(uow.conn, normalise(username))
    if existing is not None:
        password_hash = await passwords.hash(password)
        async with db.uow() as uow:
            await repository.set_admin(uow.conn, existing.id, password_hash)
        return int(existing.id)
    try:
        return await sign_up(db, passwords, clock, username, password, role="ADMIN")
    except UsernameTaken:  # another process created it a moment ago
        return await ensure_admin(db, passwords, clock, username, password)
