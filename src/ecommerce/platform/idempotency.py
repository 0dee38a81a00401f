"""`Idempotency-Key`: the same user repeating a key with the same request gets the first
answer again and nothing happens twice; the same key with another request is 422.

The key row is inserted first, in the same transaction as the work. A concurrent request
with the same key blocks on the unique index until the first commits (PostgreSQL, MySQL) or
waits for the write lock (SQLite), then finds the row and replays its answer. A request that
fails with a domain error stores that answer too, so a retry is answered the same way.

A work that writes in one statement (an order on PostgreSQL, `shop_place_order`) writes the
key's row in that statement too, with its answer (`UnitOfWork.claim`): no transaction is
opened around it, so no lock it takes waits on this process's round trips (decision 77)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Header
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ecommerce.platform.database import Database, RetryTransaction, UnitOfWork, is_deadlock
from ecommerce.platform.errors import (
    AppError,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    InvalidRequest,
)
from ecommerce.platform.http import error_body
from ecommerce.platform.models import idempotency_keys

# 1..128 printable ASCII, no space at either end (HTTP strips it: it could never arrive).
KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,126}[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN)
Work = Callable[[UnitOfWork], Awaitable[tuple[int, Any]]]

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=KEY_PATTERN,
           description="1..128 printable ASCII; the same key with the same body replays "
                       "the first answer, with another body is 422"),
]


def valid_key(key: str) -> bool:
    return _KEY.match(key) is not None


class KeyTaken(Exception):  # noqa: N818 - a state, answered by replaying the key
    """The key's row is there already (or was being written and now is)."""


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key that the work writes itself, in its one statement, with the answer
    it returns (`UnitOfWork.claim`); a key already there raises KeyTaken."""

    user_id: int
    key: str
    fingerprint: str
    created_at: datetime


def fingerprint(operation: str, payload: Any) -> str:
    body = orjson.dumps([operation, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


async def run(db: Database, *, user_id: int, key: str | None, operation: str, payload: Any,
              path: str, work: Work, one_statement: bool = False) -> tuple[int, Any]:
    """Run `work` in one transaction, at most once per (user, key); returns (status, body).
    `one_statement`: the work writes in one statement (Database.uow); with a key, that
    statement writes the key's row too (`uow.claim`) with the answer the work returns."""
    if key is None:
        return await _with_retry(db, work, one_statement=one_statement)
    if not valid_key(key):
        raise InvalidRequest("Idempotency-Key (header): 1 to 128 printable ASCII characters")
    print_ = fingerprint(operation, payload)
    # A work in one statement needs no look first: that statement refuses a key that is
    # there (KeyTaken, below), and nothing is written before it; a domain error is
    # remembered only if the key is new, else the key's answer is replayed. Elsewhere the
    # look saves a repeat a transaction that would wait on the key's row.
    replay = None if one_statement else await _replay(db, user_id, key, print_)
    if replay is not None:
        return replay

    async def keyed(uow: UnitOfWork) -> tuple[int, Any]:
        await _claim(uow, user_id, key, print_)
        status, body = await work(uow)
        await uow.conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            .values(status_code=status, response_body=orjson.dumps(body).decode()))
        return status, body

    claim = Claim(user_id, key, print_, datetime.now(UTC))

    async def claimed(uow: UnitOfWork) -> tuple[int, Any]:
        uow.claim = claim
        return await work(uow)

    try:
        if one_statement:
            return await _with_retry(db, claimed, one_statement=True)
        return await _with_retry(db, keyed)
    except KeyTaken:
        replay = await _replay(db, user_id, key, print_)
        if replay is None:
            raise IdempotencyKeyInProgress() from None
        return replay
    except AppError as error:
        return await _remember_error(db, user_id, key, print_, error, path)


# Deadlocks are retried this many times: on MySQL, requests waiting on one key's row (the
# first's transaction refused and rolled back) deadlock with each other, repeatedly when
# many came at once (tests/orders/test_orders_api.py: ten with one key).
ATTEMPTS = 8


async def _with_retry(db: Database, work: Work, attempts: int = ATTEMPTS, *,
                      one_statement: bool = False) -> tuple[int, Any]:
    """Run `work` in a unit of work, again (from scratch) if the database reports a
    deadlock: nothing of a rolled-back attempt remains, so a retry is safe."""
    for attempt in range(attempts):
        try:
            async with db.uow(one_statement=one_statement) as uow:
                return await work(uow)
        except (DBAPIError, RetryTransaction) as error:
            if not is_deadlock(error) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


async def _claim(uow: UnitOfWork, user_id: int, key: str, print_: str) -> None:
    try:
        await uow.conn.execute(insert(idempotency_keys).values(
            user_id=user_id, key=key, fingerprint=print_, status_code=0, response_body="",
            created_at=datetime.now(UTC)))
    except IntegrityError:
        raise KeyTaken() from None


_ANSWER = (select(idempotency_keys.c.fingerprint, idempotency_keys.c.status_code,
                  idempotency_keys.c.response_body)
           .where(idempotency_keys.c.user_id == bindparam("_user_id"),
                  idempotency_keys.c.key == bindparam("_key")))


async def _replay(db: Database, user_id: int, key: str, print_: str) -> tuple[int, Any] | None:
    async with db.uow(write=False) as uow:
        row = (await uow.conn.execute(_ANSWER, {"_user_id": user_id, "_key": key})).first()
    if row is None:
        return None
    if row.fingerprint != print_:
        raise IdempotencyKeyReused()
    if row.status_code == 0:
        raise IdempotencyKeyInProgress()
    return row.status_code, orjson.loads(row.response_body)


_REMEMBER = insert(idempotency_keys)  # built once (platform/sql.py says why)


async def _remember_error(db: Database, user_id: int, key: str, print_: str, error: AppError,
                          path: str) -> tuple[int, Any]:
    """Store a domain error as this key's answer and return it (the first answer too)."""
    if error.status >= 500 or error.status == 429 or isinstance(
            error, IdempotencyKeyReused | IdempotencyKeyInProgress):
        raise error
    body = error_body(error.status, error.code, error.message, path)

    async def remember(uow: UnitOfWork) -> tuple[int, Any]:
        await uow.conn.execute(_REMEMBER, {
            "user_id": user_id, "key": key, "fingerprint": print_,
            "status_code": error.status, "response_body": orjson.dumps(body).decode(),
            "created_at": datetime.now(UTC)})
        return error.status, body

    try:
        return await _with_retry(db, remember, one_statement=True)  # one INSERT
    except IntegrityError:
        # A concurrent request with the same key got there first: its answer stands.
        replay = await _replay(db, user_id, key, print_)
        if replay is not None:
            return replay
    return error.status, body
