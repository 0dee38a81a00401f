from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ecommerce.accounts.models import users


async def add_user(conn: AsyncConnection, username: str, password_hash: str, role: str,
                   now: datetime, email: str | None = None) -> int:
    result = await conn.execute(insert(users).values(
        username=username, password_hash=password_hash, role=role, created_at=now,
        email=email))
    return int(result.inserted_primary_key[0])


async def get_by_username(conn: AsyncConnection, username: str) -> Any:
    return (await conn.execute(select(users).where(users.c.username == username))).first()


async def get_by_id(conn: AsyncConnection, user_id: int) -> Any:
    return (await conn.execute(select(users).where(users.c.id == user_id))).first()


async def set_email(conn: AsyncConnection, user_id: int, email: str | None) -> bool:
    result = await conn.execute(update(users).where(users.c.id == user_id).values(email=email))
    return result.rowcount == 1


async def set_credentials(conn: AsyncConnection, user_id: int, now: datetime, *,
                          password_hash: str, role: str | None = None) -> int:
    """A new password (and role): the user's token version rises, so every token issued
    before stops working; the new version."""
    values: dict[str, Any] = {"password_hash": password_hash,
                              "token_version": users.c.token_version + 1,
                              "token_changed_at": now}
    if role is not None:
        values["role"] = role
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    return int((await conn.execute(select(users.c.token_version)
                                   .where(users.c.id == user_id))).scalar_one())


async def rehash(conn: AsyncConnection, user_id: int, old: str, new: str) -> None:
    """The same password hashed with today's parameters, unless it changed meanwhile; the
    token version stays (nothing was revoked)."""
    await conn.execute(update(users).where(users.c.id == user_id, users.c.password_hash == old)
                       .values(password_hash=new))


async def versions_changed_since(conn: AsyncConnection, since: datetime | None
                                 ) -> list[tuple[int, int, datetime]]:
    """(user id, token version, when it changed) of users whose version changed since
    (None: ever)."""
    rows = await conn.execute(select(users.c.id, users.c.token_version,
                                     users.c.token_changed_at)
                              .where(users.c.token_changed_at > since if since is not None
                                     else users.c.token_changed_at.is_not(None)))
    return [(row.id, row.token_version, row.token_changed_at) for row in rows]
