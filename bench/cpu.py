"""Server CPU per request, in process: `python -m bench.cpu [--backend B] [--scenario S,...]`.

Loads the same fixtures as `make bench` into a scratch database, starts the app in this
process (its lifespan, no HTTP server), replays each scenario's requests straight into
the ASGI app one at a time, and prints the CPU time this process spent per request
(the app's own cost: routing, validation, cache and database client work, JSON), with the
wall time beside it (which adds the waits for the database and Redis). The first
`--warm` requests are replayed unmeasured, so caches and prepared statements are warm;
their own latencies are printed as the cold figures. GET scenarios only."""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import uvloop

from bench.run import BACKENDS, SECRET, create_database, drop_database, load_fixtures, request_lines
from ecommerce.app import ShopApp, create_app
from ecommerce.platform.migrate import upgrade
from ecommerce.platform.settings import Settings


async def call(app: ShopApp, target: str) -> int:
    path, _, query = target.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": query.encode(), "headers": [(b"host", b"bench")],
             "server": ("bench", 80), "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))] * 1000


async def measure(backend: str, scenarios: list[str], warm: int, count: int) -> None:
    url = await create_database(backend)
    try:
        upgrade(url)
        data = await load_fixtures(url)
        settings = Settings(_env_file=None, database_url=url, jwt_secret=SECRET,
                            redis_url=BACKENDS[backend][1], run_consumers=False,
                            redis_prefix=f"bench-cpu:{uuid.uuid4().hex[:8]}",
                            rate_limit_claim="0", rate_limit_login="0", access_log=False,
                            log_level="WARNING")
        app = create_app(settings)
        async with app.api.router.lifespan_context(app.api):
            for scenario in scenarios:
                targets = [line.split("\t")[1] for line in request_lines(scenario, data)]
                cold = []
                for target in targets[:warm]:
                    started = time.perf_counter()
                    await call(app, target)
                    cold.append(time.perf_counter() - started)
                codes: dict[int, int] = {}
                cpu, wall = time.process_time(), time.perf_counter()
                for target in targets[warm:warm + count]:
                    status = await call(app, target)
                    codes[status] = codes.get(status, 0) + 1
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"{backend:15} {scenario:15} CPU {cpu / count * 1000:.3f} ms/request, "
                      f"wall {wall / count * 1000:.3f} ms/request {codes}; the first {warm}: "
                      f"p50 {percentile(cold, 0.5):.2f}, p99 {percentile(cold, 0.99):.2f} ms",
                      flush=True)
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
    for backend in args.backend.split(","):
        # uvloop, as under `ecommerce serve`
        uvloop.run(measure(backend, args.scenario.split(","), args.warm, args.count))


if __name__ == "__main__":
    main()
