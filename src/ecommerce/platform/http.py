"""HTTP edges shared by every route: the error format, request ids, access metrics."""

from __future__ import annotations

import http
import logging
import os
import random
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecommerce.platform import metrics
from ecommerce.platform.engines import driver_connection_errors
from ecommerce.platform.errors import AppError, PayloadTooLarge, UnsupportedMediaType
from ecommerce.platform.logging import request_id

log = logging.getLogger("ecommerce.http")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


class JsonResponse(Response):
    """JSON rendered by orjson (for bodies built as dicts: errors, replays, probes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(status: int, code: str, message: str, path: str) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "status": status,
        "error": http.HTTPStatus(status).phrase,
        "code": code,
        "message": message,
        "path": path,
    }


def error_response(status: int, code: str, message: str, path: str,
                   headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, code, message, path), status_code=status,
                          headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    if loc and loc[0] in ("query", "path", "header") and len(parts) > 1:
        return f"{parts[1]} ({parts[0]})"
    return ".".join(parts) or "body"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    messages = []
    for error in errors[:5]:
        if error.get("type") == "json_invalid":
            messages.append("body: malformed JSON")
            continue
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "missing" and loc in (("body",), ()):
            messages.append("body: a JSON body is required")
            continue
        messages.append(f"{_field(loc)}: {error.get('msg', 'invalid')}")
    return "; ".join(messages)


def _bad_value(error: DBAPIError) -> bool:
    """The database refused a value (SQL's "data exception", SQLSTATE class 22)."""
    if isinstance(error, DataError):
        return True
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
    return False


def _lost(error: DBAPIError) -> bool:
    """The driver lost the connection under SQLAlchemy's generic wrapper: a connection
    error class, SQLSTATE 08 (connection exception) or 57P (the server shutting it down).
    Seen when a pool's very first connection is cut while SQLAlchemy initialises it."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None),
                      getattr(getattr(error.orig, "__cause__", None), "__cause__", None)):
        if isinstance(candidate, UNAVAILABLE):
            return True
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str) and state.startswith(("08", "57P")):
            return True
    return False


# A backing service (database, Redis) that cannot be reached: 503 with Retry-After.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, ConnectionError, TimeoutError, OSError,
    RedisConnectionError, RedisTimeoutError, *driver_connection_errors())


class _RouteMethods:
    """Each route's methods, read once from the app (its routes are fixed once it serves):
    by literal path (a dict lookup, for every request) and by path pattern (for a 405)."""

    def __init__(self, app: FastAPI):
        self.literal: dict[str, set[str]] = {}
        self.patterns = []
        for route in iter_route_contexts(app.routes):
            if not route.methods:
                continue
            if "{" in route.path:
                self.patterns.append((compile_path(route.path)[0], set(route.methods)))
            else:
                self.literal.setdefault(route.path, set()).update(route.methods)


def route_methods(app: FastAPI) -> _RouteMethods:
    table = getattr(app.state, "route_methods", None)
    if table is None:
        table = app.state.route_methods = _RouteMethods(app)
    return table


def allowed_methods(app: FastAPI, path: str) -> tuple[set[str], bool]:
    """The methods this path has, and whether a route names it literally. A literal route
    (`/api/balance/recharge`) is the resource even where a templated one
    (`/api/balance/{userId}`) would also match."""
    table = route_methods(app)
    literal = table.literal.get(path)
    if literal is not None:
        return literal, True
    return {method for regex, methods in table.patterns if regex.match(path)
            for method in methods}, False


def method_not_allowed(request: Request, allowed: set[str]) -> JsonResponse:
    return error_response(405, "METHOD_NOT_ALLOWED",
                          f"{request.method} is not allowed on {request.url.path}",
                          request.url.path, {"Allow": ", ".join(sorted(allowed))})


class MethodGuard:
    """Pure ASGI, ahead of routing: a method that a literally named path does not have is
    405 with its Allow header, before FastAPI tries a templated sibling (GET
    /api/balance/recharge is not GET /api/balance/{userId} with a bad id, and is refused
    before the token is even checked)."""

    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = route_methods(self.api).literal.get(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                await method_not_allowed(Request(scope), allowed)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JsonResponse:
        return error_response(exc.status, exc.code, exc.message, request.url.path, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JsonResponse:
        return error_response(400, "INVALID_REQUEST", describe_validation(list(exc.errors())),
                              request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        # 400 is FastAPI's "error parsing the body" (e.g. JSON nested past the parser's
        # depth): a malformed body like any other.
        codes = {400: "INVALID_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                 413: PayloadTooLarge.code}
        code = codes.get(exc.status_code, http.HTTPStatus(exc.status_code).name)
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 400:
            message = "body: malformed JSON (it could not be parsed)"
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}"
        if exc.status_code == 405:  # Starlette's Allow names one route's methods only
            return method_not_allowed(request, allowed_methods(app, request.url.path)[0])
        return error_response(exc.status_code, code, message, request.url.path,
                              getattr(exc, "headers", None))

    async def _error(request: Request, exc: Exception) -> JsonResponse:
        status, body, headers = error_answer(exc, request.url.path)
        return JsonResponse(body, status_code=status, headers=headers)

    for kind in (IntegrityError, DBAPIError, *UNAVAILABLE, Exception):
        app.add_exception_handler(kind, _error)


def error_answer(exc: BaseException, path: str) -> tuple[int, dict[str, Any],
                                                         dict[str, str] | None]:
    """(status, body, headers) for an exception: the one mapping, used by FastAPI's
    handlers and the lean paths alike. A domain error is its own answer; the database
    refusing a value is the client's 400, a constraint it broke 409; a backing service
    out of reach is 503 with Retry-After; anything else is 500, logged."""
    if isinstance(exc, AppError):
        return exc.status, error_body(exc.status, exc.code, exc.message, path), exc.headers
    if isinstance(exc, IntegrityError):
        log.warning("unhandled integrity error", extra={"error": str(exc.orig)[:200]})
        return 409, error_body(409, "CONFLICT", "The request conflicts with the current state",
                               path), None
    if isinstance(exc, UNAVAILABLE) or (isinstance(exc, DBAPIError)
                                        and (exc.connection_invalidated or _lost(exc))):
        log.error("backing service unavailable",
                  extra={"error": type(exc).__name__, "detail": str(exc).splitlines()[0][:300]
                         if str(exc) else ""})
        return 503, error_body(503, "SERVICE_UNAVAILABLE",
                               "A backing service is unavailable; retry shortly", path), {
            "Retry-After": "1"}
    if isinstance(exc, DBAPIError) and _bad_value(exc):
        # e.g. NUL in a query parameter: the client's value, not a fault
        return 400, error_body(400, "INVALID_REQUEST",
                               "A value in the request is not valid for this field", path), None
    log.error("unhandled error", exc_info=exc)
    return 500, error_body(500, "INTERNAL_ERROR", "Internal error", path), None


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(StarletteHTTPException):
    """Raised by BodyGuard's receive. An HTTPException, because FastAPI turns any other
    error raised while it reads a body into "400 error parsing the body"."""


def _json_media_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                            and media.endswith("+json"))


class BodyGuard:
    """Pure ASGI, ahead of every path (the lean ones included): a body over `max_bytes` is
    answered 413 before it is read (by its Content-Length) or as soon as it passes the
    limit (chunked); an API request whose body is not JSON is answered 415 unread."""

    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, content_type, chunked = None, None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = True
        path = scope["path"]
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                size = 0
            if size > self.max_bytes:
                await self._too_large(path, send)
                return
        has_body = chunked or (length is not None and length != b"0")
        if (has_body and scope["method"] in _BODY_METHODS and path.startswith("/api/")
                and not _json_media_type(content_type or "")):
            error = UnsupportedMediaType()
            await JsonResponse(error_body(error.status, error.code, error.message, path),
                               status_code=error.status)(scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(413, self._message())
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(path, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes"

    async def _too_large(self, path: str, send: Send) -> None:
        body = orjson.dumps(error_body(413, "PAYLOAD_TOO_LARGE", self._message(), path))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# Request ids: 128 random bits, as uuid4 had, from a generator seeded once per process
# rather than a system call per request (they name requests in logs; they guard nothing).
_ids = random.Random(os.urandom(32))


class RequestContextMiddleware:
    """Pure ASGI: request id in, request id out, one metrics sample and log line per request."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True):
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _REQUEST_ID.match(candidate) else None
                break
        rid = rid or f"{_ids.getrandbits(128):032x}"
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            handler = getattr(route, "handler", "fastapi")
            metrics.REQUESTS.labels(scope["method"], template, str(status), handler).inc()
            metrics.LATENCY.labels(scope["method"], template, handler).observe(elapsed)
            if self.access_log or status >= 500:
                log.info("request", extra={"method": scope["method"], "path": scope["path"],
                                           "status": status, "ms": round(elapsed * 1000, 2),
                                           "handler": handler})
            request_id.reset(token)
