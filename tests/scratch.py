"""Scratch databases on a PostgreSQL or MySQL server, and a PgBouncer in front of one, for
tests and benchmarks."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from ecommerce.platform.engines import create_engine


async def create_scratch_database(server_url: str, prefix: str) -> str:
    """A new, empty database named `prefix_<random>` on this PostgreSQL or MySQL server
    (for tests and benchmarks); returns its URL."""
    import uuid

    from sqlalchemy import text

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(server_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            charset = (" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                       if engine.dialect.name == "mysql" else "")
            await conn.execute(text(f"CREATE DATABASE {name}{charset}"))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(server_url: str, url: str) -> None:
    """Drop a database made by `create_scratch_database` (closing its sessions on PG)."""
    from sqlalchemy import text

    engine = create_engine(server_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
            await conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database}{force}"))
    finally:
        await engine.dispose()


DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


# Ports for the servers tests start, below Linux's ephemeral range (32768-60999 by
# default). A port the kernel picked (bind to 0) and that was let go can be given again at
# once as the source port of any outgoing connection, and on a busy CI the test's own
# thousands of client connections took one between `free_port` and the server's bind. No
# connection is ever given a port below the range, and each test process (xdist worker)
# takes its ports from its own block, so only a port still held by an earlier server of the
# same process can be busy; the bind below skips it.
_PORTS_FROM, _BLOCK = 20_000, 1_000
_next_port: Iterator[int] | None = None


def _ports() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    slot = (int(worker[2:]) % 8 if worker.startswith("gw") and worker[2:].isdigit()
            else 8 + os.getpid() % 4)
    first, offset = _PORTS_FROM + slot * _BLOCK, os.getpid() % _BLOCK
    return itertools.cycle(first + (offset + step) % _BLOCK for step in range(_BLOCK))


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on or holds, outside the kernel's ephemeral
    range so no outgoing connection can take it before the caller's server binds it."""
    global _next_port
    if _next_port is None:
        _next_port = _ports()
    for _ in range(_BLOCK):
        port = next(_next_port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in this process's block of {_BLOCK}")


def wait_port(host: str, port: int, *, what: Callable[[], str] = str,
              seconds: float = 30) -> None:
    """Until something listens on host:port; RuntimeError with `what()` (a log) if not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{host}:{port} did not open: {what()}")


def render(template: Path, **values: str) -> str:
    """A file of deploy/ with its {{PLACEHOLDERS}} filled; every one must be."""
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, f"unrendered placeholder in {template}"
    return text


def pgbouncer_config(folder: Path, *, listen_addr: str, listen_port: int, postgres_host: str,
                     postgres_port: int, pool_size: int, user: str = "postgres") -> Path:
    """deploy/pgbouncer.ini rendered into `folder` (trusting `user`, as the local servers
    here do), with its user list; the files belong to postgres, as PgBouncer, refusing to
    run as root, runs as postgres. Returns the .ini's path."""
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(render(
        DEPLOY / "pgbouncer.ini", LISTEN_ADDR=listen_addr, LISTEN_PORT=str(listen_port),
        POSTGRES_HOST=postgres_host, POSTGRES_PORT=str(postgres_port), AUTH_TYPE="trust",
        DIR=str(folder), POOL_SIZE=str(pool_size)))
    if os.geteuid() == 0:
        for path in (folder, *folder.iterdir()):
            shutil.chown(path, "postgres")
    return ini


@contextlib.contextmanager
def pgbouncer_in_front(database_url: str, *, pool_size: int = 20
                       ) -> Iterator[tuple[str, subprocess.Popen]]:
    """A private PgBouncer (deploy/pgbouncer.ini, `pool_size` server connections) in front
    of this PostgreSQL database, for tests and benchmarks: yields the database's URL
    through it, with `?pgbouncer=true`, and the process; stopped on exit."""
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (make test installs it)")
    target = make_url(database_url)
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = free_port()
    ini = pgbouncer_config(folder, listen_addr="127.0.0.1", listen_port=port,
                           postgres_host=target.host or "127.0.0.1",
                           postgres_port=target.port or 5432, pool_size=pool_size,
                           user=target.username or "postgres")
    command = [binary, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", port, what=lambda: f"pgbouncer exited {process.poll()}")
        through = target.set(host="127.0.0.1", port=port).update_query_dict(
            {"pgbouncer": "true"})
        yield through.render_as_string(hide_password=False), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
