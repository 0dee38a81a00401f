"""Lean paths for the few routes a sale hammers (a coupon claim, placing an order) and
the public catalog reads every visitor makes (the product list, the top sellers).

On this machine FastAPI's routing, dependency injection, validation and middleware cost
more CPU than the work of a claim or an order itself (docs/performance.md). This ASGI
layer sits ahead of FastAPI (see `ecommerce.app.ShopApp`) and answers the well-formed,
authorised requests of those routes itself: it reads the body, checks the bearer token,
and calls the same service code as the route. Everything else (invalid bodies, missing or
bad tokens, requests for another user) is handed, untouched, to the FastAPI route, which
stays the documented, validated definition of the endpoint and gives the refusals.

A handler gets (context, principal, body, scope) and returns (status, JSON body), or None
to pass the request to FastAPI; a public handler gets (context, scope) and returns
(status, JSON body, headers) or None. Errors are answered here in the SPEC's error
format."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecommerce.accounts.security import Principal
from ecommerce.platform.errors import AppError
from ecommerce.platform.http import UNAVAILABLE, error_body

log = logging.getLogger("ecommerce.fastpath")
Handler = Callable[[Any, Principal, bytes, Scope], Awaitable[tuple[int, Any] | None]]
PublicHandler = Callable[[Any, Scope], Awaitable[tuple[int, Any, dict[str, str] | None] | None]]


class _Route:
    """What the metrics middleware reads to label the request (and which path answered)."""

    handler = "lean"

    def __init__(self, path: str):
        self.path = path


class LeanRoutes:
    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Handler],
                 public: dict[tuple[str, str], PublicHandler] | None = None):
        self.app = app  # the FastAPI app: its state holds the running AppContext
        self.routes = routes
        self.public = public or {}  # no body, no caller: (context, scope)
        self.labels = {key: _Route(key[1]) for key in (*routes, *self.public)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = (scope.get("method", ""), scope.get("path", ""))
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = getattr(getattr(self.app, "state", None), "ctx", None)
        public = self.public.get(key)
        if public is not None:
            if ctx is None or not await self._answer(key, scope, send,
                                                     lambda: public(ctx, scope)):
                await self.app(scope, receive, send)
            return
        handler = self.routes.get(key)
        if handler is None:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:  # bounded: BodyGuard (platform/http.py) stops it at MAX_BODY_BYTES
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        principal = _principal(ctx, scope) if ctx is not None else None
        if principal is None or not await self._answer(
                key, scope, send, lambda: handler(ctx, principal, body, scope)):
            await self.app(scope, _replay(body, more, receive), send)

    async def _answer(self, key: tuple[str, str], scope: Scope, send: Send,
                      call: Callable[[], Awaitable[tuple[Any, ...] | None]]) -> bool:
        """Run the handler and send its answer; False if it passed (nothing was sent)."""
        path = scope["path"]
        try:
            answer = await call()
            if answer is None:
                return False
            scope["route"] = self.labels[key]
            await respond(send, *answer)
        except AppError as error:
            scope["route"] = self.labels[key]
            await respond(send, error.status, error_body(error.status, error.code,
                                                         error.message, path), error.headers)
        except (DBAPIError, *UNAVAILABLE) as error:
            log.error("request failed: backing service unavailable",
                      extra={"error": type(error).__name__, "path": path})
            await respond(send, 503, error_body(503, "SERVICE_UNAVAILABLE",
                                                "A backing service is unavailable; retry "
                                                "shortly", path), {"Retry-After": "1"})
        except Exception:  # outside FastAPI's handlers: answer in the error format here
            log.exception("request failed", extra={"path": path})
            await respond(send, 500, error_body(500, "INTERNAL_ERROR", "Internal error", path))
        return True


def _principal(ctx: Any, scope: Scope) -> Principal | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            principal: Principal | None = ctx.tokens.read(token.strip())
            return principal
    return None


def header(scope: Scope, wanted: bytes) -> str | None:
    """A request header's value (latin-1), or None."""
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


async def respond(send: Send, status: int, payload: Any,
                  headers: dict[str, str] | None = None) -> None:
    raw = orjson.dumps(payload)
    header_list = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(raw)).encode())]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})
