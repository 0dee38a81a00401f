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


async def set_admin(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(update(users).where(users.c.id == user_id)
                       .values(role="ADMIN", password_hash=password_hash))
