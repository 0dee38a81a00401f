"""`ecommerce serve` as a real process: refusing a weak signing key, whose forwarded
address it believes, and how its supervisor treats workers that die or are only busy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ecommerce.platform.settings import VAR_DIR
from tests.e2e.conftest import live_server, server_env
from tests.waiting import until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def database_url():
    """These tests are about the process, not the database: SQLite only."""
    import tempfile

    return f"sqlite:///{tempfile.mkdtemp(prefix='ecommerce-serve-')}/shop.db"


@pytest.fixture(scope="module", autouse=True)
def migrated(database_url):
    from ecommerce.platform.migrate import upgrade

    upgrade(database_url)


def test_a_short_jwt_secret_is_refused_at_start_saying_why(database_url):
    result = subprocess.run(
        [sys.executable, "-m", "ecommerce", "serve", "--no-migrate", "--port", "1"],
        env=server_env(database_url, JWT_SECRET="abc"), capture_output=True, text=True,
        timeout=60)
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr and "at least 32 bytes" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_second_server_on_a_port_in_use_refuses_unless_asked(database_url):
    """Issue 32 M4: the workers' sockets use SO_REUSEPORT, which would let a second
    `serve` split the first one's traffic: it refuses, saying why, unless --reuse-port."""
    async with live_server(database_url, workers=2) as first:
        port = first.url.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "ecommerce", "serve", "--no-migrate", "--workers", "2",
             "--port", port], env=server_env(database_url), capture_output=True, text=True,
            timeout=60)
        assert second.returncode == 1, second.stderr
        assert f"127.0.0.1:{port} is in use" in second.stderr
        assert "--reuse-port" in second.stderr and "Traceback" not in second.stderr
        async with httpx.AsyncClient() as client:  # the first still serves, alone
            assert (await client.get(f"{first.url}/healthz")).status_code == 200


def test_startup_logs_are_json_lines_without_alembic_chatter_or_colour_codes(tmp_path):
    """Issue 29 item 7: what `make run` prints on a first start: the shop's JSON lines (one
    for the migration), none of alembic's per-plugin lines, no ANSI codes inside JSON; and
    the demo accounts."""
    database = f"sqlite:///{tmp_path / 'fresh.db'}"
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", "serve", "--seed-demo", "--port", "0"],
        env=server_env(database, LOG_LEVEL="INFO"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in process.stdout:  # until the server says it runs
            lines.append(line)
            if "Uvicorn running" in line or len(lines) > 200:
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = "".join(lines)
    assert "Uvicorn running" in text, text
    assert "demo/demo-password" in text and "admin/admin-password" in text
    assert "alembic" not in text and "\x1b[" not in text and "\\u001b" not in text, text
    json_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry["message"] == "database schema up to date" for entry in json_lines)


async def _signup(client: httpx.AsyncClient, url: str, name: str) -> None:
    response = await client.post(f"{url}/api/auth/signup",
                                 json={"username": name, "password": "password-1"})
    assert response.status_code == 201, response.text


async def _wrong_logins(url: str, name: str, forwarded: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        return [(await client.post(f"{url}/api/auth/login",
                                   json={"username": name, "password": "wrong-password"},
                                   headers={"X-Forwarded-For": address})).status_code
                for address in forwarded]


async def test_forwarded_addresses_are_not_believed_from_an_untrusted_peer(database_url):
    addresses = [f"10.1.0.{i}" for i in range(5)] + ["garbage", "::zz"]
    async with live_server(database_url, workers=1, RATE_LIMIT_LOGIN="3/minute") as server:
        async with httpx.AsyncClient() as client:
            await _signup(client, server.url, "xff-victim")
        statuses = await _wrong_logins(server.url, "xff-victim", addresses)
    assert statuses[:3] == [401, 401, 401]
    assert set(statuses[3:]) == {429}  # one client, whatever it claims to forward for


async def test_forwarded_addresses_are_believed_from_a_trusted_proxy(database_url):
    async with live_server(database_url, workers=1, RATE_LIMIT_LOGIN="3/minute",
                           TRUSTED_PROXIES="127.0.0.1") as server:
        async with httpx.AsyncClient() as client:
            await _signup(client, server.url, "behind-proxy")
        spread = await _wrong_logins(server.url, "behind-proxy",
                                     [f"10.2.0.{i}" for i in range(5)])
        one = await _wrong_logins(server.url, "behind-proxy", ["10.3.0.1"] * 4)
    assert spread == [401] * 5  # five clients behind the proxy, each within its limit
    assert one == [401, 401, 401, 429]


def _children(pid: int) -> list[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in command:
                found.append(int(child))
    return found


def _log_lines(path: str) -> list[dict]:
    lines = []
    for line in Path(path).read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return lines


async def _wait_for(predicate) -> None:  # noqa: ANN001
    await until(predicate, what="the supervisor's state", every=0.1)


async def test_a_dead_worker_is_logged_with_its_pid_and_reason_and_replaced(database_url):
    async with live_server(database_url, workers=2) as server:
        workers = _children(server.process.pid)
        assert len(workers) == 2
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> list[dict]:
            return [line for line in _log_lines(server.log_path)
                    if line.get("message") == "worker replaced"]

        await _wait_for(lambda: replaced())
        [line] = replaced()
        assert line["pid"] == victim and line["reason"] == "killed by SIGKILL"
        assert line["replacement"] in _children(server.process.pid)
        async with httpx.AsyncClient() as client:
            for _ in range(10):
                assert (await client.get(f"{server.url}/healthz")).status_code == 200


async def test_workers_are_forked_and_metrics_add_up_every_worker(database_url):
    """The workers are forked from the supervisor, which loaded the app's modules once
    (decision 86): a worker's command line is the supervisor's, not a spawned interpreter's;
    and /metrics still counts every worker's requests (each its own file in
    PROMETHEUS_MULTIPROC_DIR), over new connections that the kernel spreads over both. The
    metric files go with the server that wrote them, and with a server killed before it
    could remove its own: the next server removes the folders of the processes gone."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now: a server killed with SIGKILL left this behind
    left_behind = VAR_DIR / "prometheus" / str(gone.pid)
    left_behind.mkdir(parents=True, exist_ok=True)
    async with live_server(database_url, workers=2) as server:
        mine = VAR_DIR / "prometheus" / str(server.process.pid)
        assert mine.is_dir() and not left_behind.exists()
        workers = _children(server.process.pid)
        assert len(workers) == 2
        supervisor = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in workers] == [supervisor] * 2
        for _ in range(100):
            async with httpx.AsyncClient() as client:  # a new connection each time
                assert (await client.get(f"{server.url}/api/categories")).status_code == 200
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{server.url}/metrics")).text
        [count] = [line for line in metrics.splitlines()
                   if line.startswith("http_requests_total{")
                   and 'route="/api/categories"' in line]
        assert count.endswith(" 100.0"), count
    assert not mine.exists()


async def test_a_busy_worker_is_not_killed_for_missing_a_few_health_checks(database_url):
    async with live_server(database_url, workers=2) as server:
        workers = _children(server.process.pid)
        busy = workers[0]
        os.kill(busy, signal.SIGSTOP)  # a worker that cannot answer for 7 s (uvicorn's 5)
        await asyncio.sleep(7)
        os.kill(busy, signal.SIGCONT)
        await asyncio.sleep(1)
        assert sorted(_children(server.process.pid)) == sorted(workers)
        assert not [line for line in _log_lines(server.log_path)
                    if line.get("message") == "worker replaced"]


def _sidecars(pid: int) -> list[int]:
    return [child for child in _children(pid)
            if b"consume" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


async def test_the_consumers_run_beside_the_server_at_low_priority(database_url):
    """`serve` starts `ecommerce consume` at CONSUMER_NICE, replaces it when it dies, and
    takes it along when the server itself is killed."""
    async with live_server(database_url, workers=1, RUN_CONSUMERS="true",
                           DATA_PLATFORM_URL="http://127.0.0.1:9/events") as server:
        await _wait_for(lambda: _sidecars(server.process.pid))
        [sidecar] = _sidecars(server.process.pid)
        assert _nice(sidecar) == 19 and _nice(server.process.pid) == 0
        os.kill(sidecar, signal.SIGKILL)

        def replaced() -> list[dict]:
            return [line for line in _log_lines(server.log_path)
                    if line.get("message") == "sidecar replaced"]

        await _wait_for(lambda: replaced())
        [line] = replaced()
        assert line["pid"] == sidecar and line["reason"] == "killed by SIGKILL"
        [replacement] = _sidecars(server.process.pid)
        assert replacement == line["replacement"] and _nice(replacement) == 19
        os.kill(server.process.pid, signal.SIGKILL)  # no chance to stop it: it goes too
        await _wait_for(lambda: not Path(f"/proc/{replacement}").exists()
                        or b"Z" == Path(f"/proc/{replacement}/stat").read_bytes()
                        .rsplit(b")", 1)[1].split()[0])
