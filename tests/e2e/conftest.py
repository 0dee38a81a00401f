"""Real server processes (`ecommerce serve --workers N`) for concurrency and fault tests."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from ecommerce.accounts.security import Tokens
from tests.conftest import TEST_SECRET, make_settings, wipe, wipe_redis
from tests.scratch import free_port, wait_port
from tests.waiting import until

pytestmark = pytest.mark.e2e


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log_path: str


def listening(port: int) -> int:
    """How many sockets listen on this TCP port (the kernel's table: one line each, a
    worker's SO_REUSEPORT socket included)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                _, local, _, state, *_ = line.split()
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def server_env(database_url: str, redis_url: str | None = None, **extra: str) -> dict[str, str]:
    settings = make_settings(database_url)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "ADMIN_USERNAME", "ADMIN_PASSWORD")}
    env.update({
        "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_SECRET,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "RATE_LIMIT_LOGIN": "0",
        "RATE_LIMIT_LOGIN_ACCOUNT": "0",
        "RATE_LIMIT_CLAIM": "0",
        "RATE_LIMIT_SIGNUP": "0",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "REDIS_PREFIX": settings.redis_prefix,
        "RUN_CONSUMERS": "false",
        # Four test processes (pytest-xdist) may each run a server (and consume processes)
        # against the one PostgreSQL of 100 connections: at most 3 + 3 per process, so a
        # server of two workers holds at most 12.
        "DB_POOL_SIZE": "3",
        "DB_POOL_OVERFLOW": "3",
        # A busy test process (two run at once) may read an answer late and reuse its
        # connection seconds later: the server must not have closed it meanwhile (seen as
        # a reset, httpx.ReadError, in storms). Clients drop idle connections after 1 s.
        "KEEP_ALIVE_SECONDS": "60",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def live_server(database_url: str, *, workers: int = 2, redis_url: str | None = None,
                      **env: str) -> AsyncIterator[LiveServer]:
    """Start `ecommerce serve` on a free port; stop it (and its workers) afterwards."""
    port = free_port()
    log_path = f"/tmp/ecommerce-e2e-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", "serve", "--no-migrate", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        env=server_env(database_url, redis_url, **env), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {open(log_path).read()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{url}/readyz", timeout=1)).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"server did not start: {open(log_path).read()[-3000:]}")
        # Every worker serving: each listens on a socket of its own (SO_REUSEPORT) once its
        # start is done, and /readyz was answered by the first one ready.
        await until(lambda: listening(port) >= workers, what=f"{workers} workers listening",
                    every=0.02)
        yield LiveServer(url, process, log_path)
    except BaseException:
        # What the server said (a worker replaced and why, an error logged) goes into the
        # failed test's report; the log file itself is gone with the CI machine.
        log.flush()
        with open(log_path, errors="replace") as said:
            print(f"--- the server's log ({log_path}), its last lines ---\n"
                  f"{said.read()[-4000:]}")
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


class ShopContext:
    """What the test factories need (ctx, db, clock) without an app: for seeding a
    database that a separate server process then serves."""

    def __init__(self, database_url: str):
        from ecommerce.context import AppContext

        self.ctx = AppContext.build(make_settings(database_url))
        self.db = self.ctx.db
        self.clock = self.ctx.clock


@pytest.fixture
async def clean_db(database_url: str) -> str:
    await wipe(database_url)
    return database_url


@pytest.fixture
async def clean_redis(redis_url: str) -> str:
    await wipe_redis(redis_url, make_settings("sqlite://").redis_prefix)
    return redis_url


@functools.cache
def _tokens() -> Tokens:
    """The test servers' token issuer, built once (its settings cost milliseconds)."""
    from ecommerce.platform.clock import Clock

    return Tokens(make_settings("sqlite://"), Clock())


def token_for(user_id: int, role: str = "CUSTOMER") -> str:
    from datetime import UTC, datetime

    return _tokens().issue(user_id, role, datetime.now(UTC))


class _InFlight(httpx.AsyncClient):
    """At most `n` requests handed to the connection pool at once; the rest wait their turn
    here. The server sees the same `n` at once either way, but httpcore's pool scans every
    queued request on each change, so a gather of a thousand requests over 200 connections
    cost the test's own process seconds of CPU (most of a storm's time on a busy machine)."""

    def __init__(self, n: int, **options: object):
        super().__init__(**options)  # type: ignore[arg-type]
        self._slots = asyncio.Semaphore(n)

    async def send(self, request: httpx.Request, **options: object) -> httpx.Response:
        async with self._slots:
            return await super().send(request, **options)  # type: ignore[arg-type]


def many_connections(n: int) -> httpx.AsyncClient:
    # Idle connections are dropped after 1 s, well before uvicorn closes them (5 s): with
    # httpx's default of 5 s a request could go out on a connection the server was closing
    # at that instant, and fail with ReadError (seen in a storm with Redis stopped).
    return _InFlight(n, limits=httpx.Limits(max_connections=n, max_keepalive_connections=n,
                                            keepalive_expiry=1.0),
                     timeout=httpx.Timeout(60.0))


async def bulk_users(database_url: str, count: int, *, balance: int = 0,
                     prefix: str = "load") -> list[int]:
    """`count` customers made in one transaction (with a recharge ledger entry for any
    balance), for storms of thousands of users; returns their ids."""
    import uuid as _uuid
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from ecommerce.accounts.models import users
    from ecommerce.platform.database import Database
    from ecommerce.wallet.models import balance_ledger, wallets

    now = datetime.now(UTC)
    tag = _uuid.uuid4().hex[:6]
    names = [f"{prefix}{tag}{i}" for i in range(count)]
    db = Database(database_url, pool_size=1)
    try:
        async with db.uow() as uow:
            await uow.conn.execute(insert(users), [
                {"username": name, "password_hash": "!", "role": "CUSTOMER", "created_at": now}
                for name in names])
            ids = list((await uow.conn.execute(
                select(users.c.id).where(users.c.username.in_(names)).order_by(users.c.id))
            ).scalars())
            await uow.conn.execute(insert(wallets), [
                {"user_id": uid, "balance": balance, "updated_at": now} for uid in ids])
            if balance:
                await uow.conn.execute(insert(balance_ledger), [
                    {"user_id": uid, "type": "RECHARGE", "amount": balance,
                     "balance_after": balance, "order_id": None, "created_at": now}
                    for uid in ids])
    finally:
        await db.dispose()
    return ids


async def audit_clean(database_url: str) -> None:
    from ecommerce.audit import audit_database
    from ecommerce.platform.database import Database

    db = Database(database_url, pool_size=1)
    try:
        report = await audit_database(db)
    finally:
        await db.dispose()
    assert not any(report.values()), report


@contextlib.contextmanager
def own_redis(port: int | None = None):
    """A private redis-server (on a free port, or this one), so a test may stop it; it is
    killed on exit."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = port or free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port("127.0.0.1", port, seconds=5)
    try:
        yield f"redis://127.0.0.1:{port}", process
    finally:
        process.kill()
        process.wait()


def service_binary(name: str) -> str:
    """A Debian service's binary (`make test` installs pgbouncer and haproxy); skip, or
    fail under REQUIRE_BACKENDS=1, if it is missing."""
    import shutil

    from tests.backends import REQUIRED

    binary = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if binary is None:
        reason = f"{name} is not installed (make test installs it)"
        if REQUIRED:
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


@contextlib.contextmanager
def own_pgbouncer(database_url: str, *, pool_size: int = 4):
    """A private PgBouncer in transaction mode in front of this PostgreSQL database, with
    a server pool smaller than the clients' so that they share server connections; yields
    the database's URL through it (`?pgbouncer=true`) and the process. Stopped on exit."""
    from tests.scratch import pgbouncer_in_front

    service_binary("pgbouncer")
    with pgbouncer_in_front(database_url, pool_size=pool_size) as found:
        yield found
