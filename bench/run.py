"""`make bench`: load scenarios against a real server, as its shoppers meet it.

    python -m bench.run [--scenario NAME[,NAME...]|all] [--backend embedded|postgres|
                        postgres+redis|postgres+redis+pgbouncer|mysql+redis|
                        postgres+redis+kafka]
                        [--workers 2] [--duration 10] [--connections 32] [--warmup 3]
                        [--rate 0]

(`postgres+redis+pgbouncer`: the server reaches PostgreSQL through a private PgBouncer in
transaction mode, with `?pgbouncer=true`; `postgres+redis+kafka`: the order events go
through a local Kafka-protocol broker, tansu, instead of the Redis stream.)

For each backend: a fresh database (dropped afterwards), migrations, fixture data, a local
data platform (`ecommerce dev-sink`), then `ecommerce serve --workers N` with the
production defaults: rate limits on, the consumers on (the data platform to the sink, the
e-mails to a local `ecommerce dev-mail`; with Redis, through the stream), access log on.
The one setting the benchmark adds is TRUSTED_PROXIES=127.0.0.1:
wrk stands for the proxy in front of many shoppers, each request carrying its shopper's
address in X-Forwarded-For, so that the per-address login limit applies per shopper, as it
would behind a real proxy. Every scenario runs in the same server, in the order given.

* ceilings: GET /healthz (through FastAPI) and GET /livez (the lean path): each scenario's
  ratio is to the ceiling of the path that answers it.
* Each wrk scenario replays pre-generated requests (bench/wrk/replay.lua), warmed up for
  --warmup seconds with requests of their own (an order's Idempotency-Key is never
  replayed), and reports requests/s, p50/p90/p99 and answers by status and error code.
  Orders carry an Idempotency-Key, a share use a held coupon, a share buy products that
  sell out, a share come from customers whose balance runs short.
* coupon_flash_sale (bench/sale.py): 10,000 customers each claim a coupon of 1,000 once;
  it reports the time to sell out, issues per second, the winners' latency and, apart, the
  refusals'.
* Order scenarios also report each consumer's peak lag and its outbox-to-effect time, and
  consumer_drain how many events a second each consumer drains (bench/consumers.py).
  `--consumers off` runs the server without consumers, for the comparison.
* sale_day: browsing, logins, orders, balances and histories at fixed rates, all at once,
  with a flash sale starting halfway; each route's p50/p99 and the whole.

Every scenario is followed by `ecommerce audit`. Results go to bench/results/ as Markdown and
JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
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
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from argon2 import PasswordHasher
from sqlalchemy import insert, select
from tests.kafka import Tansu
from tests.scratch import create_scratch_database, drop_scratch_database, pgbouncer_in_front

from bench import card
from bench import consumers as bench_consumers
from bench.sale import claim_request, run_sale
from ecommerce.accounts.models import users
from ecommerce.accounts.security import Tokens
from ecommerce.audit import audit_database
from ecommerce.catalog.models import categories, products, stock_movements
from ecommerce.coupons.models import coupon_events, coupons, user_coupons
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.migrate import upgrade
from ecommerce.platform.settings import Settings
from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY
from ecommerce.wallet.models import balance_ledger, wallets

ROOT = Path(__file__).resolve().parent
SECRET = "bench-signing-key-that-is-long-enough-for-hs256"
BACKENDS = {
    "embedded": (None, None),
    "postgres": ("postgresql://postgres@127.0.0.1:5432/test", None),
    "postgres+redis": ("postgresql://postgres@127.0.0.1:5432/test", "redis://127.0.0.1:6379"),
    # The server reaches PostgreSQL through a private PgBouncer (transaction mode, 20 server
    # connections) with ?pgbouncer=true (decision 54): what that setting costs.
    "postgres+redis+pgbouncer": ("postgresql://postgres@127.0.0.1:5432/test",
                                 "redis://127.0.0.1:6379"),
    "mysql+redis": ("mysql://root@127.0.0.1:3306/test", "redis://127.0.0.1:6379"),
    # The events through Kafka (a local tansu broker, started for the run) instead of the
    # Redis stream; Redis still serves the rest.
    "postgres+redis+kafka": ("postgresql://postgres@127.0.0.1:5432/test",
                             "redis://127.0.0.1:6379"),
}
SCENARIOS = ["ceilings", "product_list", "product_detail", "top_sellers", "balance_read",
             "recharge", "order_mix", "order_hot_product", "coupon_flash_sale",
             "product_list_login_flood", "sale_day", "card_orders", "consumer_drain"]
# Order scenarios report their consumers too: peak lag, outbox-to-effect time.
WATCHED = {"order_mix", "order_hot_product", "card_orders"}
# Which path answers each scenario: its ratio is to that path's ceiling.
LEAN = {"livez", "product_list", "top_sellers", "order_mix", "order_hot_product",
        "product_list_login_flood"}
# product_list_login_flood: the product list measured while another wrk sends FLOOD_RATE
# wrong logins a second over FLOOD_LOGINS connections (unknown usernames: each costs a real
# argon2 check), about twenty times what the machine can check.
FLOOD_LOGINS, FLOOD_RATE = 60, 200
USERS, PRODUCTS, FLASH_COUPONS = 10_000, 1_000, 1_000
SHORT_USERS = 2_000  # the last ones: 20,000 won, which runs short after an order or two
HOLDERS = 3_000  # the first ones hold an ORDERS coupon (1,000 won off), usable once
SCARCE = 50  # the last products: 2 in stock each, sold out during the order scenarios
LOGIN_USERS, LOGIN_PASSWORD = 1_000, "bench-password-1"
SORTS = ["newest", "price_asc", "price_desc", "name", "popular"]
# sale_day: requests/s per route group, and the flash sale that starts halfway.
SALE_DAY_RATES = {"browse_list": 120, "browse_detail": 80, "top_sellers": 40, "login": 4,
                  "order_mix": 60, "balance_and_history": 40}
SALE_DAY_CLAIMERS, SALE_DAY_CLAIM_RATE = 5_000, 1_000
# How long a group's answers may take before its rate runs out of connections (a paced
# wrk sends on a connection only once its last answer came): a login waits its turn for
# a password check behind the sale, seconds at a time on two cores.
SALE_DAY_LATENCY_S = {"login": 3.0}


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
    """10,000 customers (the last 2,000 with 20,000 won, the others 10,000,000; the first
    3,000 hold an ORDERS coupon; the first 1,000 can log in), 1,000 products (the last 50
    with 2 in stock, the others 1,000,000), and two flash-sale coupons of 1,000: FLASH for
    the flash sale, DAYSALE for the sale day's."""
    now = datetime.now(UTC)
    db = Database(url, pool_size=1)
    rng = random.Random(42)
    # Hashed as the server hashes with its defaults (it would otherwise rehash at login).
    defaults = Settings.model_fields
    password_hash = PasswordHasher(time_cost=defaults["argon2_time_cost"].default,
                                   memory_cost=defaults["argon2_memory_kib"].default,
                                   parallelism=1).hash(LOGIN_PASSWORD)
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
                stock = 2 if i >= PRODUCTS - SCARCE else 1_000_000
                rows.append({"category_id": category_ids[i % 10], "name": name,
                             "description": description,
                             "search_text": f"{name} {description}".lower(),
                             "price": rng.randint(10, 1000) * 100, "stock": stock,
                             "sold_quantity": 0, "active": True, "created_at": now,
                             "updated_at": now})
            await uow.conn.execute(insert(products), rows)
            product_rows = (await uow.conn.execute(
                select(products.c.id, products.c.stock).order_by(products.c.id))).all()
            await uow.conn.execute(insert(stock_movements), [
                {"product_id": row.id, "kind": "INITIAL", "delta": row.stock,
                 "stock_after": row.stock, "order_id": None, "created_at": now}
                for row in product_rows])
            for start in range(0, USERS, 2_000):
                await uow.conn.execute(insert(users), [
                    {"username": f"bench{i}",
                     "password_hash": password_hash if i < LOGIN_USERS else "!",
                     "role": "CUSTOMER", "created_at": now, "email": f"bench{i}@example.com"}
                    for i in range(start, start + 2_000)])
            user_ids = list((await uow.conn.execute(
                select(users.c.id).order_by(users.c.id))).scalars())
            for start in range(0, USERS, 2_000):
                chunk = list(enumerate(user_ids[start:start + 2_000], start))
                money = {uid: 20_000 if i >= USERS - SHORT_USERS else 10_000_000
                         for i, uid in chunk}
                await uow.conn.execute(insert(wallets), [
                    {"user_id": uid, "balance": money[uid], "updated_at": now}
                    for _, uid in chunk])
                await uow.conn.execute(insert(balance_ledger), [
                    {"user_id": uid, "type": "RECHARGE", "amount": money[uid],
                     "balance_after": money[uid], "order_id": None, "created_at": now}
                    for _, uid in chunk])
            for code in ("FLASH", "DAYSALE"):
                await uow.conn.execute(insert(coupons).values(
                    code=code, name="Flash sale", discount_type="FIXED", discount_value=1_000,
                    min_order_amount=0, total_quantity=FLASH_COUPONS, issued_quantity=0,
                    issue_starts_at=now, valid_days=7, created_at=now))
            await uow.conn.execute(insert(coupons).values(
                code="ORDERS", name="Order coupon", discount_type="FIXED",
                discount_value=1_000, min_order_amount=0, total_quantity=HOLDERS,
                issued_quantity=HOLDERS, issue_starts_at=now, valid_days=30, created_at=now))
            coupon_id = (await uow.conn.execute(
                select(coupons.c.id).where(coupons.c.code == "ORDERS"))).scalar_one()
            expires = now + timedelta(days=30)
            await uow.conn.execute(insert(user_coupons), [
                {"coupon_id": coupon_id, "user_id": uid, "status": "AVAILABLE",
                 "issued_at": now, "expires_at": expires} for uid in user_ids[:HOLDERS]])
            held = (await uow.conn.execute(
                select(user_coupons.c.id, user_coupons.c.user_id)
                .where(user_coupons.c.coupon_id == coupon_id))).all()
            await uow.conn.execute(insert(coupon_events), [
                {"user_coupon_id": row.id, "coupon_id": coupon_id, "user_id": row.user_id,
                 "kind": "ISSUED", "order_id": None, "created_at": now} for row in held])
    finally:
        await db.dispose()
    tokens = Tokens(Settings(_env_file=None, jwt_secret=SECRET, jwt_ttl_seconds=86_400),
                    Clock())
    ids = [row.id for row in product_rows]
    return {"users": user_ids, "products": ids[:PRODUCTS - SCARCE],
            "rich": user_ids[HOLDERS:USERS - SHORT_USERS],
            "scarce": ids[PRODUCTS - SCARCE:],
            "tokens": {uid: tokens.issue(uid, "CUSTOMER", now) for uid in user_ids}}


def sale_requests(data: dict[str, Any], claimers: int | None = None, code: str = "FLASH"
                  ) -> list[bytes]:
    """A flash sale: every customer (or the first `claimers` of a random order) claims
    the coupon once."""
    rng = random.Random(f"sale:{code}")
    order = rng.sample(data["users"], len(data["users"]))[:claimers]
    return [claim_request(data["tokens"][uid], uid, code) for uid in order]


def _address(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def request_lines(scenario: str, data: dict[str, Any], phase: str = "measure") -> list[str]:
    """Tab-separated METHOD, PATH, TOKEN, BODY, HEADERS ("Name: value|...") lines for the
    scenario; `phase` ("warmup" or "measure") draws its own requests, so a measured order
    never replays a warm-up's Idempotency-Key."""
    rng = random.Random(f"{scenario}:{phase}")
    users_, products_, tokens = data["users"], data["products"], data["tokens"]
    rich = users_[HOLDERS:USERS - SHORT_USERS]
    # each phase its own coupon holders, each of whom uses the coupon once
    holders = {"prime": users_[:200], "warmup": users_[200:HOLDERS // 2], "card": []}.get(
        phase, users_[HOLDERS // 2:HOLDERS])
    short = users_[USERS - SHORT_USERS:]
    hot = products_[0]

    def body(value: dict[str, Any]) -> str:
        return json.dumps(value, separators=(",", ":"))

    def key() -> str:
        return f"Idempotency-Key: {uuid.UUID(int=rng.getrandbits(128), version=4)}"

    def order() -> tuple[str, ...]:
        share = rng.random()
        if share < 0.1 and holders:  # with a held coupon, each used once
            uid, code = holders.pop(), "ORDERS"
            picks = rng.sample(products_, rng.randint(1, 2))
        elif share < 0.2:  # products that sell out
            uid, code, picks = rng.choice(rich), None, [rng.choice(data["scarce"])]
        elif share < 0.3:  # a customer whose balance runs short
            uid, code, picks = rng.choice(short), None, rng.sample(products_, rng.randint(1, 3))
        else:
            uid, code, picks = rng.choice(rich), None, rng.sample(products_, rng.randint(1, 3))
        value: dict[str, Any] = {
            "userId": uid, "items": [{"productId": p, "quantity": rng.randint(1, 2)}
                                     for p in picks]}
        if code:
            value["couponCode"] = code
        return ("POST", "/api/orders", tokens[uid], body(value), key())

    def product_list() -> tuple[str, ...]:
        query = [f"page={rng.randint(1, 5)}", "size=20", f"sort={rng.choice(SORTS)}"]
        if rng.random() < 0.5:
            query.append(f"category=cat-{rng.randint(0, 9)}")
        if rng.random() < 0.2:
            query.append(f"keyword={quote(rng.choice(['red', 'steel', 'oak', '상품']))}")
        return ("GET", "/api/products?" + "&".join(query), "", "", "")

    lines = []
    for _ in range(30_000):
        uid = rng.choice(users_)
        if scenario in ("healthz", "livez"):
            lines.append(("GET", f"/{scenario}", "", "", ""))
        elif scenario == "login_flood":
            lines.append(("POST", "/api/auth/login", "", body({
                "username": f"intruder{rng.randrange(10**9)}", "password": "wrong-guess"}),
                f"X-Forwarded-For: {_address(rng)}"))
        elif scenario == "login":  # a customer signing in (one in ten mistypes)
            name = f"bench{rng.randrange(LOGIN_USERS)}"
            password = LOGIN_PASSWORD if rng.random() < 0.9 else "mistyped-password"
            lines.append(("POST", "/api/auth/login", "",
                          body({"username": name, "password": password}),
                          f"X-Forwarded-For: {_address(rng)}"))
        elif scenario in ("product_list", "product_list_login_flood", "browse_list"):
            lines.append(product_list())
        elif scenario in ("product_detail", "browse_detail"):
            lines.append(("GET", f"/api/products/{rng.choice(products_)}", "", "", ""))
        elif scenario == "top_sellers":
            lines.append(("GET", "/api/products/top?days=3&limit=5", "", "", ""))
        elif scenario == "balance_read":
            lines.append(("GET", f"/api/balance/{uid}", tokens[uid], "", ""))
        elif scenario == "balance_and_history":
            path = rng.choice([f"/api/balance/{uid}", f"/api/balance/{uid}/history",
                               f"/api/users/{uid}/orders"])
            lines.append(("GET", path, tokens[uid], "", ""))
        elif scenario == "recharge":
            lines.append(("POST", "/api/balance/recharge", tokens[uid],
                          body({"userId": uid, "amount": 1}), ""))
        elif scenario == "order_mix":
            lines.append(order())
        elif scenario == "order_hot_product":
            uid = rng.choice(rich)
            lines.append(("POST", "/api/orders", tokens[uid], body({
                "userId": uid, "items": [{"productId": hot, "quantity": 1}]}), key()))
        else:
            raise ValueError(f"no requests for {scenario}")
    return ["\t".join(line) for line in lines]


# Running -----------------------------------------------------------------------------------

HELPER_NICE = 19


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_helper(port: int, *command: str) -> subprocess.Popen:
    """`ecommerce <command>` on `port`, once it accepts connections: a stand-in for a
    system that runs on other machines (the data platform, the mail server, the gateway),
    at nice 10 so that it takes the room the shop leaves, as a consumer process does."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", *command, "--port", str(port)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.nice(HELPER_NICE))
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"`ecommerce {command[0]}` did not start")


def start_sink(port: int) -> subprocess.Popen:
    """The local data platform the relay delivers to."""
    return start_helper(port, "dev-sink", "--quiet")


def server_settings(url: str, redis_url: str | None, sink_port: int,
                    sandbox_port: int | None, mail_port: int | None = None,
                    consumers: bool = True) -> dict[str, str]:
    """The environment the server runs with: the production defaults, except what the
    report names (TRUSTED_PROXIES: wrk is the proxy), with the sandbox as its gateway
    when the card scenario runs."""
    settings = {"DATABASE_URL": url, "JWT_SECRET": SECRET, "TRUSTED_PROXIES": "127.0.0.1",
                "DATA_PLATFORM_URL": f"http://127.0.0.1:{sink_port}/events",
                "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}"}
    if redis_url:
        settings["REDIS_URL"] = redis_url
    if mail_port is not None:  # the e-mail consumer, to a local dev-mail
        settings["SMTP_URL"] = f"smtp://127.0.0.1:{mail_port}"
    if not consumers:  # only for the comparison the report names (--consumers off)
        settings["RUN_CONSUMERS"] = "false"
    if sandbox_port is not None:
        settings.update({"PAYMENT_GATEWAY_URL": f"http://127.0.0.1:{sandbox_port}",
                         "PAYMENT_SECRET_KEY": DEFAULT_SECRET_KEY,
                         "PAYMENT_CLIENT_KEY": DEFAULT_CLIENT_KEY})
    return settings


def start_server(settings: dict[str, str], workers: int, port: int,
                 server_src: str | None = None) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if not Settings.model_fields.get(key.lower())}  # nothing of this shell's settings
    env.update(settings)
    if server_src:  # the server from another checkout (e.g. a worktree of the last commit)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [server_src, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "ecommerce", "serve", "--no-migrate", "--port", str(port),
         "--workers", str(workers)], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL,  # the access log (on, as by default), not kept
        stderr=open(ROOT / "results" / "server.log", "w"))  # noqa: SIM115
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


def forget_redis(redis_url: str, prefix: str) -> None:
    """Delete the run's keys (its event stream does not expire) from the shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()


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


def _merged_percentiles(parts: list[dict[str, Any]], shares: tuple[float, ...]
                       ) -> dict[str, float | None]:
    """Percentiles of several wrk runs taken together: each run's latency distribution
    (its quantiles at every half percent) weighted by its requests."""
    points = []
    for part in parts:
        quantiles = part.get("quantiles_ms") or []
        weight = part["requests"] / max(len(quantiles), 1)
        points += [(value, weight) for value in quantiles]
    points.sort()
    total = sum(weight for _, weight in points)
    result: dict[str, float | None] = {}
    for share in shares:
        running, found = 0.0, None
        for value, weight in points:
            running, found = running + weight, value
            if running >= share * total:
                break
        result[f"p{round(share * 100)}_ms"] = round(found, 2) if found is not None else None
    return result


def run_scenario(scenario: str, port: int, data: dict[str, Any], args: argparse.Namespace
                 ) -> dict[str, Any]:
    """One wrk scenario: warm-up requests of its own, then the measured run."""
    if args.warmup:  # every pooled connection prepares its statements, caches fill
        run_wrk(port, request_lines(scenario, data, "warmup"), args.warmup, args.connections,
                args.threads, args.rate)
    flood = None
    if scenario == "product_list_login_flood":
        flood = start_wrk(port, request_lines("login_flood", data), args.duration + 2,
                          FLOOD_LOGINS, 1, FLOOD_RATE)
        time.sleep(1)  # the flood is on before the measured list starts
    summary = run_wrk(port, request_lines(scenario, data), args.duration, args.connections,
                      args.threads, args.rate)
    if flood is not None:
        logins = finish_wrk(flood, FLOOD_RATE)
        summary["flood"] = {"rps": logins["rps"], "codes": logins["codes"],
                            "p50_ms": logins["p50_ms"], "p99_ms": logins["p99_ms"]}
    return summary


def run_sale_day(port: int, data: dict[str, Any], args: argparse.Namespace
                 ) -> dict[str, Any]:
    """Every route group at its fixed rate, all at once, and halfway a flash sale."""
    duration = max(2 * args.duration, 20)
    rates = {group: max(1, round(rate * args.sale_day_scale))
             for group, rate in SALE_DAY_RATES.items()}
    if args.sale_day_logins:
        rates["login"] = args.sale_day_logins
    claim_rate = max(1, round(SALE_DAY_CLAIM_RATE * args.sale_day_scale))
    for group in rates:  # warm, briefly and apart, with requests of their own
        run_wrk(port, request_lines(group, data, "warmup"), 1, 2, 1, rates[group])
    running = {group: start_wrk(port, request_lines(group, data), duration,
                                max(8, math.ceil(rate * SALE_DAY_LATENCY_S.get(group, 0.25))),
                                1, rate)
               for group, rate in rates.items()}
    sale: dict[str, Any] = {}

    def flash_sale() -> None:
        time.sleep(duration / 2)
        sale.update(run_sale(port, sale_requests(data, SALE_DAY_CLAIMERS, "DAYSALE"), 64,
                             claim_rate))

    seller = threading.Thread(target=flash_sale)
    seller.start()
    routes = {group: finish_wrk(started, rates[group])
              for group, started in running.items()}
    seller.join()
    whole = _merged_percentiles(list(routes.values()), (0.5, 0.99))
    return {"duration_s": duration, "routes": routes, "sale": sale, "claim_rate": claim_rate,
            "whole": {"rps": round(sum(r["rps"] for r in routes.values()), 1),
                      "target_rps": sum(rates.values()), **whole,
                      "late": sum(r["late"] for r in routes.values())}}


def run_card_orders(port: int, data: dict[str, Any], args: argparse.Namespace,
                    sandbox: str) -> dict[str, Any]:
    """Card confirms through a 50 ms gateway at CARD_RATE a second, beside balance orders
    as fast as they go (bench/card.py)."""
    confirms = card.confirm_lines(port, sandbox, data,
                                  card.CARD_RATE * (args.duration + 2) + 100)
    if args.warmup:
        run_wrk(port, request_lines("order_mix", data, "warmup"), args.warmup,
                args.connections, args.threads)
    paying = start_wrk(port, confirms, args.duration, 32, 1, card.CARD_RATE)
    balance = run_wrk(port, request_lines("order_mix", data, "card"), args.duration,
                      args.connections, args.threads)
    paid = finish_wrk(paying, card.CARD_RATE)
    return {**paid, "gateway_latency_ms": round(card.GATEWAY_LATENCY * 1000),
            "balance_orders": {key: balance[key] for key in ("rps", "p50_ms", "p99_ms",
                                                             "codes")}}


def start_sandbox(port: int) -> subprocess.Popen:
    """The card gateway's sandbox, every API call taking GATEWAY_LATENCY longer."""
    return start_helper(port, "dev-pg", "--latency", str(card.GATEWAY_LATENCY))


def _line(backend: str, name: str, summary: dict[str, Any]) -> str:
    if "issued" in summary:
        keys = ("issued", "sell_out_s", "issues_per_s", "won_p50_ms", "won_p99_ms",
                "refusals", "refused_p99_ms", "codes")
        return f"  {backend:15} {name:24} " + "  ".join(f"{k} {summary.get(k)}" for k in keys)
    if "balance_orders" in summary:
        beside = summary["balance_orders"]
        return (f"  {backend:15} {name:24} {summary['rps']} confirms/s of "
                f"{summary['target_rps']} (gateway {summary['gateway_latency_ms']} ms)  "
                f"p50 {summary['p50_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms  "
                f"{summary['codes']}; balance orders beside: {beside['rps']} req/s  "
                f"p99 {beside['p99_ms']:.2f} ms")
    if "drain" in summary:
        return "  " + f"{backend:15} {name:24} " + "; ".join(
            f"{consumer}: {d['handled']} of {d['backlog']} in {d['seconds']} s, "
            f"{d['events_per_s']} events/s" for consumer, d in summary["drain"].items())
    if "routes" in summary:
        whole = summary["whole"]
        return (f"  {backend:15} {name:24} {whole['rps']} req/s of {whole['target_rps']}  "
                f"p50 {whole['p50_ms']} ms  p99 {whole['p99_ms']} ms; sale issued "
                f"{summary['sale'].get('issued')} in {summary['sale'].get('sell_out_s')} s")
    return (f"  {backend:15} {name:24} {summary['rps']:>9} req/s  "
            f"p50 {summary['p50_ms']:.2f} ms  p99 {summary['p99_ms']:.2f} ms  "
            f"{summary['codes']}")


def run_backend(backend: str, scenarios: list[str], args: argparse.Namespace) -> dict[str, Any]:
    url = asyncio.run(create_database(backend))
    _, redis_url = BACKENDS[backend]
    server = sink = sandbox = mail = None
    settings: dict[str, str] = {}
    results: dict[str, Any] = {}
    bouncer = contextlib.ExitStack()
    try:
        upgrade(url)
        data = asyncio.run(load_fixtures(url))
        port, sink_port = free_port(), free_port()
        sink = start_sink(sink_port)
        mail_port = free_port()
        mail = start_helper(mail_port, "dev-mail", "--web-port", str(free_port()))
        # The card gateway's sandbox only for the card scenario: the others run without
        # card payment configured, as before it existed.
        sandbox_port = free_port() if "card_orders" in scenarios else None
        if sandbox_port is not None:
            sandbox = start_sandbox(sandbox_port)
        served = (bouncer.enter_context(pgbouncer_in_front(url))[0]
                  if backend.endswith("+pgbouncer") else url)
        settings = server_settings(served, redis_url, sink_port, sandbox_port, mail_port,
                                   args.consumers == "on")
        if backend.endswith("+kafka"):
            kafka = Tansu()
            kafka.start()
            bouncer.callback(kafka.kill)
            settings.update({"EVENT_BROKER": "kafka",
                             "KAFKA_BOOTSTRAP_SERVERS": kafka.servers})
        server = start_server(settings, args.workers, port, args.server_src)
        # A few orders first, so that top sellers has something to rank.
        run_wrk(port, request_lines("order_mix", data, "prime")[:400], 1, 4, 1)
        for scenario in ["ceilings"] + [s for s in scenarios if s != "ceilings"]:
            if scenario == "ceilings":
                found = {path: run_scenario(path, port, data, args)
                         for path in ("healthz", "livez")}
            elif scenario == "coupon_flash_sale":  # a sale is cold by nature: no warm-up
                found = {scenario: run_sale(port, sale_requests(data), args.connections)}
            elif scenario == "sale_day":
                found = {scenario: run_sale_day(port, data, args)}
            elif scenario == "consumer_drain":
                found = {scenario: {"drain": asyncio.run(bench_consumers.drain(url))}}
            else:
                since = datetime.now(UTC)
                with bench_consumers.LagWatch(url) as watch:
                    if scenario == "card_orders":
                        summary = run_card_orders(port, data, args,
                                                  f"http://127.0.0.1:{sandbox_port}")
                    else:
                        summary = run_scenario(scenario, port, data, args)
                if scenario in WATCHED and args.consumers == "on":
                    summary["consumers"] = asyncio.run(
                        bench_consumers.after_scenario(url, since, watch))
                found = {scenario: summary}
            problems = asyncio.run(audit(url))
            for name, summary in found.items():
                summary["audit"] = problems
                results[name] = summary
                print(_line(backend, name, summary) + "  audit "
                      + ("clean" if not problems else "BROKEN"), flush=True)
    finally:
        for process in (server, sink, sandbox, mail):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
        bouncer.close()
        asyncio.run(drop_database(backend, url))
        if redis_url and settings:
            forget_redis(redis_url, settings["REDIS_PREFIX"])
    for name, summary in results.items():
        if "rps" in summary and name not in ("healthz", "livez") and "healthz" in results:
            ceiling = results["livez" if name in LEAN else "healthz"]["rps"]
            summary["ceiling"] = "livez" if name in LEAN else "healthz"
            summary["ratio_to_ceiling"] = round(summary["rps"] / ceiling, 3) if ceiling else None
    return results


def _answers(codes: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(codes.items()))


def write_report(results: dict[str, Any], args: argparse.Namespace) -> Path:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ") + (f"-{args.label}"
                                                                if args.label else "")
    info = {"when": stamp, "machine": machine(), "workers": args.workers,
            "duration_s": args.duration, "warmup_s": args.warmup,
            "connections": args.connections, "threads": args.threads,
            "rate": args.rate or None, "server_src": args.server_src, "results": results}
    load = (f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s"
            + (f", paced at {args.rate} requests/s" if args.rate else ", as fast as it can")
            + (f", after {args.warmup} s of warm-up requests of its own" if args.warmup
               else ""))
    out = ROOT / "results"
    (out / f"{stamp}.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))
    lines = [f"# Benchmark {stamp}", "",
             f"Machine: {info['machine']['cores']} cores, {info['machine']['cpu']}, Python "
             f"{info['machine']['python']}, {info['machine']['wrk']}. Server: "
             f"`ecommerce serve --workers {args.workers}`"
             + (f" from `{args.server_src}`" if args.server_src else "")
             + " with the production defaults (rate limits, the consumers to a local sink and "
             "dev-mail; the events through the Redis stream with Redis, through Kafka on "
             "+kafka; access log)"
             + (" except RUN_CONSUMERS=false (no consumers)" if args.consumers == "off" else "")
             + " and TRUSTED_PROXIES=127.0.0.1 (wrk is the proxy: each "
             f"request names its shopper's address); load: {load}, from another process. "
             f"The stand-ins for other machines' systems (data platform sink, dev-mail, "
             f"card sandbox) run at nice {HELPER_NICE}.",
             "", "| backend | scenario | path | req/s | × its ceiling | p50 ms | p90 ms | "
             "p99 ms | late sends | answers | audit |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    sales, days, drains, watched = [], [], [], []
    for backend, scenarios in results.items():
        for name, s in scenarios.items():
            if "drain" in s:
                drains.append((backend, s))
                continue
            if "consumers" in s:
                watched.append((backend, name, s["consumers"]))
            if "issued" in s:
                sales.append((backend, name, s))
                continue
            if "routes" in s:
                days.append((backend, s))
                continue
            answers = _answers(s["codes"])
            errors = {k: v for k, v in s["errors"].items() if v}
            if errors:
                answers += f"; socket errors {errors}"
            if "balance_orders" in s:
                beside = s["balance_orders"]
                answers = (f"card confirms paced at {s['target_rps']}/s through a "
                           f"{s['gateway_latency_ms']} ms gateway: {answers}; balance orders "
                           f"beside them, as fast as they go: {beside['rps']:,.0f} req/s, p99 "
                           f"{beside['p99_ms']:.0f} ms, {_answers(beside['codes'])}")
            if "flood" in s:
                flood = s["flood"]
                answers += (f"; during {FLOOD_RATE} wrong logins/s on {FLOOD_LOGINS} "
                            f"connections: {flood['rps']:,.0f} logins/s answered, p99 "
                            f"{flood['p99_ms']:.0f} ms, {_answers(flood['codes'])}")
            path = "lean" if name in LEAN else "FastAPI"
            lines.append(f"| {backend} | {name} | {path} | {s['rps']:,.0f} | "
                         f"{s.get('ratio_to_ceiling', '–')} | {s['p50_ms']:.2f} | "
                         f"{s['p90_ms']:.2f} | {s['p99_ms']:.2f} | "
                         f"{s['late'] if args.rate or s.get('target_rps') else '–'} | "
                         f"{answers} | "
                         f"{'clean' if not s['audit'] else 'VIOLATIONS'} |")
    if sales:
        lines += ["", f"Flash sale: {USERS:,} customers each claim a coupon of "
                  f"{FLASH_COUPONS:,} once, over {args.connections} keep-alive connections "
                  "(bench/sale.py); sell-out is from the first claim sent to the last coupon "
                  "answered.", "",
                  "| backend | issued | sell-out s | first to last issue s | issues/s | "
                  "winners p50 ms | winners p99 ms | refusals | refusals/s | refusals p50 ms "
                  "| refusals p99 ms | answers | audit |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
                  "| --- | --- |"]
        for backend, _, s in sales:
            lines.append(
                f"| {backend} | {s['issued']} | {s.get('sell_out_s')} | "
                f"{s.get('first_to_last_issue_s')} | {s.get('issues_per_s')} | "
                f"{s.get('won_p50_ms')} | {s.get('won_p99_ms')} | {s.get('refusals', 0)} | "
                f"{s.get('refusals_per_s')} | {s.get('refused_p50_ms')} | "
                f"{s.get('refused_p99_ms')} | {_answers(s['codes'])}"
                f"{'; socket errors ' + str(s['socket_errors']) if s['socket_errors'] else ''}"
                f" | {'clean' if not s['audit'] else 'VIOLATIONS'} |")
    for backend, day in days:
        sale = day["sale"]
        lines += ["", f"Sale day on {backend} ({day['duration_s']} s, every group paced at "
                  f"its rate at once; at {day['duration_s'] / 2:g} s a flash sale: "
                  f"{SALE_DAY_CLAIMERS:,} customers arriving at {day['claim_rate']:,}/s "
                  f"claim a coupon of {FLASH_COUPONS:,}; audit after: "
                  f"{'clean' if not day['audit'] else 'VIOLATIONS'}).", "",
                  "| route group | target req/s | req/s | p50 ms | p99 ms | late sends | "
                  "answers |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for group, r in day["routes"].items():
            lines.append(f"| {group} | {r['target_rps']} | {r['rps']:,.0f} | "
                         f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['late']} | "
                         f"{_answers(r['codes'])} |")
        whole = day["whole"]
        lines.append(f"| **the whole** (merged) | {whole['target_rps']} | {whole['rps']:,.0f} "
                     f"| {whole['p50_ms']} | {whole['p99_ms']} | {whole['late']} | |")
        lines.append(f"| flash sale (claims) | {day['claim_rate']} | "
                     f"{sale.get('refusals_per_s')} refusals/s | winners "
                     f"{sale.get('won_p50_ms')} | winners {sale.get('won_p99_ms')} | | "
                     f"issued {sale.get('issued')} in {sale.get('sell_out_s')} s; "
                     f"{_answers(sale.get('codes', {}))} |")
    if watched:
        lines += ["", "Consumers during the order scenarios (in the `ecommerce consume` "
                  "process `serve` starts at nice 19, to the local sink and dev-mail): "
                  "events written during the scenario, "
                  "handled by the end (waiting up to 30 s), the peak lag sampled twice a "
                  "second, and each event's time from its outbox row to the consumer's "
                  "record.", "",
                  "| backend | scenario | consumer | events | handled | mails sent | peak lag "
                  "| p50 ms | p99 ms | max ms | dead |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for backend, name, found in watched:
            for consumer, c in found.items():
                lines.append(f"| {backend} | {name} | {consumer} | {c['events']} | "
                             f"{c['handled']} | {c['sent']} | {c['lag_peak']} | "
                             f"{c['p50_ms']} | {c['p99_ms']} | {c['max_ms']} | {c['dead']} |")
    if drains:
        lines += ["", "Consumer throughput (consumer_drain): each consumer forgets what it "
                  "did and the running server's workers do it all again; events per second "
                  "from the first to the last record.", "",
                  "| backend | consumer | backlog | handled | seconds | events/s |",
                  "| --- | --- | ---: | ---: | ---: | ---: |"]
        for backend, s in drains:
            for consumer, c in s["drain"].items():
                lines.append(f"| {backend} | {consumer} | {c['backlog']} | {c['handled']} | "
                             f"{c['seconds']} | {c['events_per_s']} |")
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
    parser.add_argument("--connections", type=int, default=32,
                        help="wrk's connections (and the flash sale's): 32 stays within the "
                             "2 workers' pools of 20")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate", type=int, default=0,
                        help="requests/s to hold (0: as fast as possible, i.e. saturation)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="seconds of warm-up requests before each wrk scenario (0: none)")
    parser.add_argument("--sale-day-scale", type=float, default=1.0,
                        help="the sale day's rates times this (1: 344 requests/s and 1,000 "
                             "claims/s)")
    parser.add_argument("--sale-day-logins", type=int, default=0,
                        help="the sale day's logins/s instead of its own (4 times the scale)")
    parser.add_argument("--server-src", default=None,
                        help="run the server from this src/ folder (another checkout's), to "
                             "compare two commits with the same benchmark")
    parser.add_argument("--consumers", choices=("on", "off"), default="on",
                        help="off: the server runs no consumers (for the comparison of the "
                        "order path with and without them); the report says so")
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
