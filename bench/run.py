"""`make bench`: load scenarios against a real server, with wrk driving from its own process.

    python -m bench.run [--scenario NAME|all] [--backend embedded|postgres|postgres+redis|
                        mysql+redis] [--workers 2] [--duration 10] [--connections 64]

For each backend: a fresh database (dropped afterwards), migrations, fixture data, then
`ecommerce serve --workers N`. Each scenario replays pre-generated requests through wrk
(bench/wrk/replay.lua), reports requests/s, p50/p90/p99, answers by status and error code,
its ratio to the bare baseline route measured in the same run, and `ecommerce audit`
afterwards. Results go to bench/results/ as Markdown and JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import insert, select
from tests.scratch import create_scratch_database, drop_scratch_database

from bench.sale import claim_request, run_sale
from ecommerce.accounts.models import users
from ecommerce.accounts.security import Tokens
from ecommerce.audit import audit_database
from ecommerce.catalog.models import categories, products, stock_movements
from ecommerce.coupons.models import coupons
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import upgrade
from ecommerce.platform.settings import Settings
from ecommerce.wallet.models import balance_ledger, wallets

ROOT = Path(__file__).resolve().parent
SECRET = "bench-signing-key-that-is-long-enough-for-hs256"
BACKENDS = {
    "embedded": (None, None),
    "postgres": ("postgresql://postgres@127.0.0.1:5432/test", None),
    "postgres+redis": ("postgresql://postgres@127.0.0.1:5432/test", "redis://127.0.0.1:6379"),
    "mysql+redis": ("mysql://root@127.0.0.1:3306/test", "redis://127.0.0.1:6379"),
}
SCENARIOS = ["baseline", "product_list", "product_detail", "top_sellers", "balance_read",
             "recharge", "coupon_flash_sale", "order_many_products", "order_hot_product",
             "product_list_login_flood"]
# product_list_login_flood: the product list measured while another wrk sends FLOOD_RATE
# wrong logins a second over FLOOD_LOGINS connections (unknown usernames: each costs a real
# argon2 check), about twenty times what the machine can check.
FLOOD_LOGINS, FLOOD_RATE = 60, 200
USERS, PRODUCTS, COUPONS = 10_000, 1_000, 1_000


# Fixture data -----------------------------------------------------------------------------

async def create_database(backend: str) -> str:
    server, _ = BACKENDS[backend]
    if server is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/shop.db"
    return await create_scratch_database(server, "ecommerce_bench")


async def drop_database(backend: str, url: str) -> None:
    server, _ = BACKENDS[backend]
    if server is not None:
        await drop_scratch_database(server, url)


async def load_fixtures(url: str) -> dict[str, Any]:
    """10,000 customers with 10,000,000 won, 1,000 products, a coupon of 1,000."""
    now = datetime.now(UTC)
    db = Database(url, pool_size=1)
    rng = random.Random(42)
    try:
        async with db.uow() as uow:
            await uow.conn.execute(insert(categories), [
                {"slug": f"cat-{i}", "name": f"Category {i}", "created_at": now}
                for i in range(10)])
            category_ids = list((await uow.conn.execute(select(categories.c.id))).scalars())
            rows = []
            for i in range(PRODUCTS):
                name = f"Product {i} {rng.choice(['red', 'blue', 'green'])} 상품"
                description = f"Bench item number {i}, {rng.choice(['cotton', 'steel', 'oak'])}"
                rows.append({"category_id": category_ids[i % 10], "name": name,
                             "description": description,
                             "search_text": f"{name} {description}".lower(),
                             "price": rng.randint(10, 1000) * 100, "stock": 1_000_000,
                             "sold_quantity": 0, "active": True, "created_at": now,
                             "updated_at": now})
            await uow.conn.execute(insert(products), rows)
            product_ids = list((await uow.conn.execute(select(products.c.id))).scalars())
            await uow.conn.execute(insert(stock_movements), [
                {"product_id": pid, "kind": "INITIAL", "delta": 1_000_000,
                 "stock_after": 1_000_000, "order_id": None, "created_at": now}
                for pid in product_ids])
            for start in range(0, USERS, 2_000):
                await uow.conn.execute(insert(users), [
                    {"username": f"bench{i}", "password_hash": "!", "role": "CUSTOMER",
                     "created_at": now} for i in range(start, start + 2_000)])
            user_ids = list((await uow.conn.execute(
                select(users.c.id).order_by(users.c.id))).scalars())
            for start in range(0, USERS, 2_000):
                chunk = user_ids[start:start + 2_000]
                await uow.conn.execute(insert(wallets), [
                    {"user_id": uid, "balance": 10_000_000, "updated_at": now} for uid in chunk])
                await uow.conn.execute(insert(balance_ledger), [
                    {"user_id": uid, "type": "RECHARGE", "amount": 10_000_000,
                     "balance_after": 10_000_000, "order_id": None, "created_at": now}
                    for uid in chunk])
            await uow.conn.execute(insert(coupons).values(
                code="FLASH", name="Flash sale", discount_type="FIXED", discount_value=1_000,
                min_order_amount=0, total_quantity=COUPONS, issued_quantity=0,
                issue_starts_at=now, valid_days=7, created_at=now))
    finally:
        await db.dispose()
    tokens = Tokens(Settings(_env_file=None, jwt_secret=SECRET, jwt_ttl_seconds=86_400),
                    Clock())
    return {"users": user_ids, "products": product_ids,
            "tokens": {uid: tokens.issue(uid, "CUSTOMER", now) for uid in user_ids}}


def sale_requests(data: dict[str, Any]) -> list[bytes]:
    """The flash sale: every customer claims the coupon once, in a random order."""
    rng = random.Random("coupon_flash_sale")
    return [claim_request(data["tokens"][uid], uid, "FLASH")
            for uid in rng.sample(data["users"], len(data["users"]))]


def request_lines(scenario: str, data: dict[str, Any]) -> list[str]:
    """Tab-separated METHOD, PATH, TOKEN, BODY lines for the scenario."""
    rng = random.Random(scenario)
    users_, products_, tokens = data["users"], data["products"], data["tokens"]
    hot = products_[0]

    def body(value: dict[str, Any]) -> str:
        return json.dumps(value, separators=(",", ":"))

    lines = []
    for _ in range(20_000):
        uid = rng.choice(users_)
        if scenario == "baseline":
            lines.append(("GET", "/healthz", "", ""))
        elif scenario == "login_flood":
            lines.append(("POST", "/api/auth/login", "", body({
                "username": f"intruder{rng.randrange(10**9)}", "password": "wrong-guess"})))
        elif scenario in ("product_list", "product_list_login_flood"):
            query = [f"page={rng.randint(1, 5)}", "size=20",
                     f"sort={rng.choice(['newest', 'price_asc', 'price_desc', 'name'])}"]
            if rng.random() < 0.5:
                query.append(f"category=cat-{rng.randint(0, 9)}")
            if rng.random() < 0.2:
                keyword = rng.choice(["red", "steel", "oak", "상품"])
                query.append(f"keyword={quote(keyword)}")
            lines.append(("GET", "/api/products?" + "&".join(query), "", ""))
        elif scenario == "product_detail":
            lines.append(("GET", f"/api/products/{rng.choice(products_)}", "", ""))
        elif scenario == "top_sellers":
            lines.append(("GET", "/api/products/top?days=3&limit=5", "", ""))
        elif scenario == "balance_read":
            lines.append(("GET", f"/api/balance/{uid}", tokens[uid], ""))
        elif scenario == "recharge":
            lines.append(("POST", "/api/balance/recharge", tokens[uid],
                          body({"userId": uid, "amount": 1})))
        elif scenario == "order_many_products":
            picks = rng.sample(products_, rng.randint(1, 3))
            lines.append(("POST", "/api/orders", tokens[uid], body({
                "userId": uid,
                "items": [{"productId": p, "quantity": rng.randint(1, 2)} for p in picks]})))
        elif scenario == "order_hot_product":
            lines.append(("POST", "/api/orders", tokens[uid], body({
                "userId": uid, "items": [{"productId": hot, "quantity": 1}]})))
    return ["\t".join(line) for line in lines]


# Running -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, redis_url: str | None, workers: int, port: int,
                 server_src: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "JWT_SECRET": SECRET, "ACCESS_LOG": "false",
           "LOG_LEVEL": "WARNING", "RATE_LIMIT_CLAIM": "0", "RATE_LIMIT_LOGIN": "0",
           "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}", "RUN_RELAY": "false"}
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    if server_src:  # the server from another checkout (e.g. a worktree of the last commit)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [server_src, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", "serve", "--no-migrate", "--port", str(port),
         "--workers", str(workers)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=open(ROOT / "results" / "server.log", "w"))  # noqa: SIM115
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                time.sleep(1)
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start; see bench/results/server.log")


def start_wrk(port: int, lines: list[str], duration: int, connections: int,
              threads: int, rate: int = 0) -> tuple[subprocess.Popen, str]:
    """wrk replaying `lines` in the background: as fast as it can (rate 0), or paced at
    `rate` requests/s. `finish_wrk` waits for it and reads its summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    env = {**os.environ, "BENCH_REQUESTS": handle.name, "BENCH_THREADS": str(threads),
           "BENCH_RATE": str(rate)}
    process = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(ROOT / "wrk" / "replay.lua"), f"http://127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return process, handle.name


def finish_wrk(started: tuple[subprocess.Popen, str], rate: int = 0) -> dict[str, Any]:
    process, requests_file = started
    stdout, stderr = process.communicate()
    os.unlink(requests_file)
    match = re.search(r"BENCH_JSON (\{.*\})", stdout)
    if process.returncode != 0 or not match:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}\n{stderr}")
    summary = json.loads(match.group(1))
    summary["rps"] = round(summary["requests"] / summary["seconds"], 1)
    summary["target_rps"] = rate or None
    return summary


def run_wrk(port: int, lines: list[str], duration: int, connections: int,
            threads: int, rate: int = 0) -> dict[str, Any]:
    """wrk replaying `lines` until done: as fast as it can (rate 0), or paced at `rate`."""
    return finish_wrk(start_wrk(port, lines, duration, connections, threads, rate), rate)


async def audit(url: str) -> list[str]:
    db = Database(url, pool_size=1)
    try:
        report = await audit_database(db)
    finally:
        await db.dispose()
    return [problem for problems in report.values() for problem in problems]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "os": platform.platform(), "wrk": (wrk_version.split("\n")[0] or "wrk").strip()}


def run_backend(backend: str, scenarios: list[str], args: argparse.Namespace) -> dict[str, Any]:
    url = asyncio.run(create_database(backend))
    _, redis_url = BACKENDS[backend]
    server = None
    results: dict[str, Any] = {}
    try:
        upgrade(url)
        data = asyncio.run(load_fixtures(url))
        port = free_port()
        server = start_server(url, redis_url, args.workers, port, args.server_src)
        # A few orders first, so that top sellers has something to rank.
        warm = request_lines("order_many_products", data)[:200]
        run_wrk(port, warm, 1, 4, 1)
        wanted = ["baseline"] + [s for s in scenarios if s != "baseline"]
        for scenario in wanted:
            if scenario == "coupon_flash_sale":  # a sale is cold by nature: no warm-up
                sale = run_sale(port, sale_requests(data), args.connections)
                sale["audit"] = asyncio.run(audit(url))
                results[scenario] = sale
                print(f"  {backend:15} {scenario:20} {json.dumps(sale)}", flush=True)
                continue
            lines = request_lines(scenario, data)
            if args.warmup:
                # Unmeasured: every pooled connection prepares its statements, every
                # worker fills its caches, as on a server that has been up for a while.
                run_wrk(port, lines, args.warmup, args.connections, args.threads, args.rate)
            flood = None
            if scenario == "product_list_login_flood":
                flood = start_wrk(port, request_lines("login_flood", data), args.duration + 2,
                                  FLOOD_LOGINS, 1, FLOOD_RATE)
                time.sleep(1)  # the flood is on before the measured list starts
            summary = run_wrk(port, lines, args.duration, args.connections, args.threads,
                              args.rate)
            if flood is not None:
                logins = finish_wrk(flood, FLOOD_RATE)
                summary["flood"] = {"rps": logins["rps"], "codes": logins["codes"],
                                    "p50_ms": logins["p50_ms"], "p99_ms": logins["p99_ms"]}
                print(f"  {'':15} {'(the login flood)':20} {logins['rps']:>9} req/s  "
                      f"p50 {logins['p50_ms']:.2f} ms  p99 {logins['p99_ms']:.2f} ms  "
                      f"{logins['codes']}", flush=True)
            summary["audit"] = asyncio.run(audit(url))
            results[scenario] = summary
            print(f"  {backend:15} {scenario:20} {summary['rps']:>9} req/s  "
                  f"p50 {summary['p50_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms  "
                  f"{'late ' + str(summary['late']) + '  ' if args.rate else ''}"
                  f"{summary['codes']}  audit {'clean' if not summary['audit'] else 'BROKEN'}",
                  flush=True)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        asyncio.run(drop_database(backend, url))
    base = results["baseline"]["rps"]
    for summary in results.values():
        if "rps" in summary:
            summary["ratio_to_baseline"] = round(summary["rps"] / base, 3) if base else None
    return results


def write_report(results: dict[str, Any], args: argparse.Namespace) -> Path:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ") + (f"-{args.label}"
                                                                if args.label else "")
    info = {"when": stamp, "machine": machine(), "workers": args.workers,
            "duration_s": args.duration, "warmup_s": args.warmup,
            "connections": args.connections,
            "threads": args.threads, "rate": args.rate or None, "results": results}
    load = (f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
            + (f", paced at {args.rate} requests/s" if args.rate else ", as fast as it can")
            + (f", after {args.warmup} s of the same load unmeasured" if args.warmup else ""))
    out = ROOT / "results"
    (out / f"{stamp}.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    lines = [f"# Benchmark {stamp}", "",
             f"Machine: {info['machine']['cores']} cores, {info['machine']['cpu']}, Python "
             f"{info['machine']['python']}, {info['machine']['wrk']}. Server: "
             f"`ecommerce serve --workers {args.workers}` (uvicorn); load: {load}, from "
             "another process.",
             "", "| backend | scenario | req/s | × baseline | p50 ms | p90 ms | p99 ms | "
             "late sends | answers | audit |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for backend, scenarios in results.items():
        for name, s in scenarios.items():
            if "rps" not in s:
                continue
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(s["codes"].items()))
            errors = {k: v for k, v in s["errors"].items() if v}
            if errors:
                answers += f"; socket errors {errors}"
            if "flood" in s:
                flood = s["flood"]
                answers += (f"; during {FLOOD_RATE} wrong logins/s on {FLOOD_LOGINS} "
                            "connections: "
                            f"{flood['rps']:,.0f} logins/s answered, p99 {flood['p99_ms']:.0f}"
                            f" ms, {', '.join(f'{k}: {v}' for k, v in flood['codes'].items())}")
            lines.append(f"| {backend} | {name} | {s['rps']:,.0f} | {s['ratio_to_baseline']} | "
                         f"{s['p50_ms']:.2f} | {s['p90_ms']:.2f} | {s['p99_ms']:.2f} | "
                         f"{s['late'] if args.rate else '–'} | {answers} | "
                         f"{'clean' if not s['audit'] else 'VIOLATIONS'} |")
    (out / f"{stamp}.md").write_text("\n".join(lines) + "\n")
    shutil.copy(out / f"{stamp}.md", out / "latest.md")
    shutil.copy(out / f"{stamp}.json", out / "latest.json")
    return out / f"{stamp}.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="all", help=f"one of {SCENARIOS} or all")
    parser.add_argument("--backend", default="embedded,postgres+redis",
                        help=f"comma-separated, of {list(BACKENDS)}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=int, default=0,
                        help="requests/s to hold (0: as fast as possible, i.e. saturation)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="seconds of the same load, unmeasured, before each scenario "
                             "(not the flash sale)")
    parser.add_argument("--server-src", default=None,
                        help="run the server from this src/ folder (another checkout's), to "
                             "compare two commits with the same benchmark")
    parser.add_argument("--label", default="",
                        help="appended to the report's file name")
    args = parser.parse_args()
    scenarios = SCENARIOS if args.scenario == "all" else args.scenario.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {sorted(unknown)}")
    results = {}
    for backend in args.backend.split(","):
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend}")
        print(f"{backend}: preparing", flush=True)
        results[backend] = run_backend(backend, scenarios, args)
    report = write_report(results, args)
    print(f"\nwritten: {report}")
    if any(s["audit"] for b in results.values() for s in b.values()):
        print("AUDIT VIOLATIONS after a scenario", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
