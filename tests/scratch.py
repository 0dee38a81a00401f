"""Scratch databases on a PostgreSQL or MySQL server, and a PgBouncer in front of one, for
tests and benchmarks."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

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


@contextlib.contextmanager
def pgbouncer_in_front(database_url: str, *, binary: str = "pgbouncer", pool_size: int = 20
                       ) -> Iterator[tuple[str, subprocess.Popen]]:
    """A private PgBouncer (transaction mode, `pool_size` server connections) in front of
    this PostgreSQL database, for tests and benchmarks: yields the database's URL through
    it, with `?pgbouncer=true`, and the process; stopped on exit."""
    import os
    import shutil
    import socket
    import tempfile
    import time
    from pathlib import Path

    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin")
    if found is None:
        raise RuntimeError(f"{binary} is not installed (make test installs it)")
    target = make_url(database_url)
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o777)  # pgbouncer refuses to run as root: it runs as postgres then
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (folder / "users.txt").write_text(f'"{target.username or "postgres"}" ""\n')
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        f"[databases]\n* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\npool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
        "ignore_startup_parameters = extra_float_digits,options\n")
    for path in folder.iterdir():
        path.chmod(0o644)
    command = [found, str(ini)]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), 0.1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"pgbouncer did not start: {process.poll()}")
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
