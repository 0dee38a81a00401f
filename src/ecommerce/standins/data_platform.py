"""`ecommerce dev-sink`: a stand-in data platform that prints (and can record) events.

It checks each event's signature when given the secret, answers 401 to a bad one, and can
append every accepted body to a JSON-lines file, which the tests read; with `hold_while`, it
answers nothing while that file exists (a platform that hangs, for as long as a test
says)."""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ecommerce.consumers.signing import signature


def sink_app(secret: str | None, record: Path | None, quiet: bool = False,
             delay: float = 0.0, hold_while: Path | None = None) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        if delay:
            await asyncio.sleep(delay)
        # A platform that hangs while the file is there (a test's switch, from outside).
        while hold_while is not None and hold_while.exists():  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.05)
        if secret is not None:
            expected = signature(secret, body)
            if not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
                return JSONResponse({"error": "bad signature"}, status_code=401)
        event = json.loads(body)
        if record is not None:
            with record.open("a") as handle:
                handle.write(body.decode() + "\n")
        if not quiet:
            print(f"{event['eventType']} {event['eventId']} order {event['orderId']} "
                  f"paid {event['paidAmount']}", flush=True)
        return JSONResponse({"received": event["eventId"]})

    return Starlette(routes=[Route("/", receive, methods=["POST"]),
                             Route("/events", receive, methods=["POST"])])
