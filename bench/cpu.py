"""Server CPU per request, in process: `python -m bench.cpu [--backend B] [--scenario S,...]`.

Loads the same fixtures as `make bench` into a scratch database, starts the app in this
process (its lifespan, no HTTP server), replays each scenario's requests straight into
the ASGI app one at a time, and prints the CPU time this process spent per request
(the app's own cost: routing, validation, cache and database client work, JSON), with the
wall time beside it (which adds the waits for the database and Redis). The first
`--warm` requests are replayed unmeasured, so caches and prepared statements are warm;
their own latencies are printed as the cold figures.

`--scenario card_confirm` measures the card confirm instead: card orders are placed through
the app and authorised at a sandbox (`ecommerce dev-pg`, no added latency) unmeasured,
then their confirms (`POST /api/orders/{id}/payment/confirm`) are replayed one at a time.
The CPU figure is the shop's side only (the sandbox is another process). `PROFILE=1`
(or `PROFILE=tottime`) prints a cProfile of the measured confirms."""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import socket
import time
import uuid
from typing import Any

import uvloop
from tests.payments.checkout import authorise

from bench.run import (
    BACKENDS,
    SECRET,
    create_database,
    drop_database,
    load_fixtures,
    request_lines,
    start_helper,
)
from ecommerce.app import ShopApp, create_app
from ecommerce.platform.migrate import upgrade
from ecommerce.platform.settings import Settings
from ecommerce.standins.gateway import DEFAULT_CLIENT_KEY, DEFAULT_SECRET_KEY


async def call(app: ShopApp, target: str, method: str = "GET", body: bytes = b"",
               token: str | None = None, extra: str = "") -> int:
    path, _, query = target.partition("?")
    headers = [(b"host", b"bench")]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    for pair in filter(None, extra.split("|")):  # "Name: value|..." as in bench.run's lines
        name, _, value = pair.partition(":")
        headers.append((name.strip().lower().encode(), value.strip().encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": query.encode(), "headers": headers,
             "server": ("bench", 80), "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))] * 1000


async def card_confirms(app: ShopApp, sandbox: str, data: dict[str, Any], count: int
                        ) -> list[tuple[str, bytes, str]]:
    """`count` card orders placed through the app and authorised at the sandbox: their
    confirms, as (path, body, token)."""
    confirms = []
    for n in range(count):
        uid = data["rich"][n % len(data["rich"])]
        product = data["products"][n % len(data["products"])]
        placed: list[dict[str, Any]] = []

        async def send(message: dict[str, Any], into: list = placed) -> None:
            if message["type"] == "http.response.body":
                into.append(json.loads(message["body"]))

        body = json.dumps({"userId": uid, "paymentMethod": "CARD",
                           "items": [{"productId": product, "quantity": 1}]}).encode()
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/api/orders",
                 "raw_path": b"/api/orders", "root_path": "", "query_string": b"",
                 "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                             (b"authorization", f"Bearer {data['tokens'][uid]}".encode())],
                 "server": ("bench", 80), "client": ("127.0.0.1", 1)}

        async def receive(body: bytes = body) -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, receive, send)
        order = placed[0]
        amount = order["payment"]["amount"]
        key, _ = await authorise(sandbox, amount, order_id=order["payment"]["pgOrderId"])
        confirms.append((f"/api/orders/{order['orderId']}/payment/confirm",
                         json.dumps({"paymentKey": key, "amount": amount}).encode(),
                         data["tokens"][uid]))
    return confirms


async def measure_confirms(app: ShopApp, backend: str, data: dict[str, Any], warm: int,
                           count: int, sandbox: str) -> None:
    confirms = await card_confirms(app, sandbox, data, warm + count)
    for path, body, token in confirms[:warm]:
        await call(app, path, "POST", body, token)
    codes: dict[int, int] = {}
    profile = cProfile.Profile() if os.environ.get("PROFILE") else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    for path, body, token in confirms[warm:]:
        status = await call(app, path, "POST", body, token)
        codes[status] = codes.get(status, 0) + 1
    if profile:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{backend:15} {'card_confirm':15} CPU {cpu / count * 1000:.3f} ms/request, "
          f"wall {wall / count * 1000:.3f} ms/request {codes} (the sandbox not counted)",
          flush=True)
    if profile:
        order = os.environ["PROFILE"] if os.environ["PROFILE"] != "1" else "cumulative"
        pstats.Stats(profile).sort_stats(order).print_stats(60)


async def measure(backend: str, scenarios: list[str], warm: int, count: int,
                  sandbox: str | None = None) -> None:
    url = await create_database(backend)
    try:
        upgrade(url)
        data = await load_fixtures(url)
        gateway = {"payment_gateway_url": sandbox, "payment_secret_key": DEFAULT_SECRET_KEY,
                   "payment_client_key": DEFAULT_CLIENT_KEY} if sandbox else {}
        settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET,
                            redis_url=BACKENDS[backend][1], run_consumers=False,
                            redis_prefix=f"bench-cpu:{uuid.uuid4().hex[:8]}",
                            rate_limit_claim="0", rate_limit_login="0", access_log=False,
                            log_level="WARNING", **gateway)
        app = create_app(settings)
        async with app.api.router.lifespan_context(app.api):
            for scenario in scenarios:
                if scenario == "card_confirm":
                    await measure_confirms(app, backend, data, min(warm, 200),
                                           min(count, 500), sandbox or "")
                    continue
                # METHOD, PATH, TOKEN, BODY, HEADERS: an order's POST as wrk sends it
                requests = [(path, method, body.encode(), token or None, extra)
                            for method, path, token, body, extra in
                            (line.split("\t") for line in request_lines(scenario, data))]
                cold = []
                for request in requests[:warm]:
                    started = time.perf_counter()
                    await call(app, *request)
                    cold.append(time.perf_counter() - started)
                codes: dict[int, int] = {}
                profile = cProfile.Profile() if os.environ.get("PROFILE") else None
                cpu, wall = time.process_time(), time.perf_counter()
                if profile:
                    profile.enable()
                for request in requests[warm:warm + count]:
                    status = await call(app, *request)
                    codes[status] = codes.get(status, 0) + 1
                if profile:
                    profile.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"{backend:15} {scenario:15} CPU {cpu / count * 1000:.3f} ms/request, "
                      f"wall {wall / count * 1000:.3f} ms/request {codes}; the first {warm}: "
                      f"p50 {percentile(cold, 0.5):.2f}, p99 {percentile(cold, 0.99):.2f} ms",
                      flush=True)
                if profile:
                    order = os.environ["PROFILE"] if os.environ["PROFILE"] != "1" else "cumulative"
                    pstats.Stats(profile).sort_stats(order).print_stats(60)
    finally:
        await drop_database(backend, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="embedded,postgres+redis")
    parser.add_argument("--scenario",
                        default="healthz,livez,product_list,top_sellers,product_detail")
    parser.add_argument("--warm", type=int, default=3000)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    # SIGTERM ends it as Ctrl-C does: the scratch database is dropped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    scenarios = args.scenario.split(",")
    sandbox = None
    if "card_confirm" in scenarios:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sandbox = start_helper(port, "dev-pg")
    try:
        for backend in args.backend.split(","):
            # uvloop, as under `ecommerce serve`
            uvloop.run(measure(backend, scenarios, args.warm, args.count,
                               f"http://127.0.0.1:{port}" if sandbox else None))
    finally:
        if sandbox:
            sandbox.terminate()
            sandbox.wait()


if __name__ == "__main__":
    main()
