"""Lean paths for the few routes a sale hammers (a coupon claim, placing an order) and
the public catalog reads every visitor makes (the product list, the top sellers).

On this machine FastAPI's routing, dependency injection, validation and middleware cost
more CPU than the work of a claim or an order itself (docs/performance.md). This ASGI
layer sits ahead of FastAPI (see `ecommerce.app.ShopApp`) and is an adapter like the
route: it calls the same use case, with the body validated by the route's own model (read
from the FastAPI route, not restated here), the caller read by `Tokens.from_header` as
the route reads it, and every error answered by the one mapping FastAPI's handlers use
(`platform.http.error_answer`). What it cannot parse (a body the model refuses, no or a
bad token, an invalid Idempotency-Key) it hands, untouched, to the FastAPI route, which
gives the documented refusal. Bodies are bounded and checked for JSON before this layer
(`platform.http.BodyGuard`), and its answers are labelled `handler="lean"` in metrics.

A POST use case is a method of a registered use case object (platform/services.py),
called as `method(caller, *path_params, command[, key])`, returning (status, JSON body); a
path may hold parameters (`/api/orders/{orderId}/payment/confirm`), each validated by the
route's own declaration (a value it refuses goes to the route, which answers 422); a public read
gets (services, scope) and returns (status, JSON body, headers), or None to leave the
request to FastAPI. The caller is read by the same function the routes' `CurrentUser`
uses, given by the composition root (`authenticate`)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecommerce.platform.errors import Forbidden, Unauthorized
from ecommerce.platform.http import allowed_methods, error_answer
from ecommerce.platform.idempotency import valid_key
from ecommerce.platform.principal import Principal, bearer_token
from ecommerce.platform.services import Services

Answer = tuple[int, Any, dict[str, str] | None]
PublicHandler = Callable[[Services, Scope], Awaitable[Answer | None]]
Authenticate = Callable[[Services, str | None], Awaitable[Principal | None]]
Q = TypeVar("Q", bound=BaseModel)


@dataclass(frozen=True)
class LeanPost:
    """A POST answered here by `service`'s `method`; `keyed`: it takes an
    Idempotency-Key."""

    service: type
    method: str
    keyed: bool = False


def query_model(model: type[Q], scope: Scope) -> Q | None:
    """The query string as `model` validates it (decoded as Starlette does), or None if
    it has a parameter the model does not know, one given twice, or an empty one."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                      keep_blank_values=True)
    values = dict(pairs)
    names = {field.alias or name for name, field in model.model_fields.items()}
    if len(values) != len(pairs) or not names.issuperset(values) or "" in values.values():
        return None
    try:
        return model.model_validate(values)
    except ValidationError:
        return None


class _Route:
    """What the metrics middleware reads to label the request (and which path answered)."""

    handler = "lean"

    def __init__(self, path: str):
        self.path = path


class LeanRoutes:
    def __init__(self, app: ASGIApp, posts: dict[str, LeanPost],
                 public: dict[tuple[str, str], PublicHandler] | None = None, *,
                 authenticate: Authenticate):
        self.app = app  # the FastAPI app: its state holds the running app's services
        self.posts = {path: post for path, post in posts.items() if "{" not in path}
        # Paths with parameters: matched segment by segment, the values checked later.
        self.templated = [(re.compile("^" + re.sub(r"\{(\w+)\}", r"([^/]+)", path) + "$"),
                           path, post) for path, post in posts.items() if "{" in path]
        self.authenticate = authenticate
        self.public = public or {}  # no body, no caller: (context, scope)
        keys = [("POST", path) for path in posts] + list(self.public)
        self.labels = {key: _Route(key[1]) for key in keys}
        self._models: dict[str, type[BaseModel]] = {}
        self._params: dict[str, list[Any]] = {}

    def _route(self, path: str) -> Any:
        for route in iter_route_contexts(self.app.routes):  # type: ignore[attr-defined]
            if route.path == path and "POST" in (route.methods or ()):
                return route.original_route
        raise LookupError(f"no FastAPI route POST {path} for its lean path")

    def body_model(self, path: str) -> type[BaseModel]:
        """The body model of the FastAPI route `POST path` (what the lean path validates
        with, so the two can never disagree on what a valid body is)."""
        model = self._models.get(path)
        if model is None:
            [param] = self._route(path).dependant.body_params
            model = self._models[path] = param.field_info.annotation
        return model

    def path_values(self, path: str, texts: tuple[str, ...]) -> list[Any] | None:
        """The path's parameters as the FastAPI route `POST path` validates them (its own
        declarations), or None if it refuses one."""
        params = self._params.get(path)
        if params is None:
            params = self._params[path] = list(self._route(path).dependant.path_params)
        values = []
        for param, text in zip(params, texts, strict=True):
            value, errors = param.validate(text, {}, loc=("path", param.alias))
            if errors:
                return None
            values.append(value)
        return values

    def _post(self, path: str) -> tuple[str, LeanPost, tuple[str, ...]] | None:
        post = self.posts.get(path)
        if post is not None:
            return path, post, ()
        for pattern, template, post in self.templated:
            match = pattern.match(path)
            if match:
                return template, post, match.groups()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = (scope["method"], scope["path"])
        services = getattr(getattr(self.app, "state", None), "services", None)
        public = self.public.get(key)
        if public is not None:
            if services is None or not await self._answer(key, scope, send,
                                                          lambda: public(services, scope)):
                await self.app(scope, receive, send)
            return
        found = self._post(scope["path"]) if scope["method"] == "POST" else None
        if found is None or services is None:
            await self.app(scope, receive, send)
            return
        template, post, texts = found
        body, more = b"", True
        while more:  # bounded: BodyGuard (platform/http.py) stops it at MAX_BODY_BYTES
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        call = self._call(template, post, texts, services, scope, body)
        if call is None or not await self._answer(("POST", template), scope, send, call):
            await self.app(scope, _replay(body, receive), send)

    def _call(self, template: str, post: LeanPost, texts: tuple[str, ...],
              services: Services, scope: Scope, body: bytes
              ) -> Callable[[], Awaitable[tuple[int, Any] | None]] | None:
        """The use case call for this request, or None if the route must answer it."""
        values = self.path_values(template, texts) if texts else []
        if values is None:
            return None
        try:
            command = self.body_model(template).model_validate_json(body)
        except ValidationError:
            return None
        key = header(scope, b"idempotency-key") if post.keyed else None
        if key is not None and not valid_key(key):
            return None
        method = getattr(services[post.service], post.method)
        authorization = header(scope, b"authorization")

        async def call() -> tuple[int, Any] | None:
            # No caller (no, a bad or a revoked token): the route gives the 401.
            caller = await self.authenticate(services, authorization)
            if caller is None:
                return None
            return await (method(caller, *values, command) if not post.keyed
                          else method(caller, *values, command, key))

        return call

    async def _answer(self, key: tuple[str, str], scope: Scope, send: Send,
                      call: Callable[[], Awaitable[tuple[Any, ...] | None]]) -> bool:
        """Run the use case and send its answer; False if it passed (nothing was sent).
        Errors are answered by the same mapping as FastAPI's handlers (`error_answer`)."""
        try:
            answer = await call()
            if answer is None:
                return False
        except Exception as error:  # noqa: BLE001 - every error gets its documented answer
            answer = error_answer(error, scope["path"])
        scope["route"] = self.labels[key]
        await respond(send, *answer)
        return True


def header(scope: Scope, wanted: bytes) -> str | None:
    """A request header's value (latin-1), or None."""
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
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


class AdminGate:
    """Pure ASGI, ahead of FastAPI (behind the body's size and type checks): a request to
    an admin route (under `prefix`, with a method the route has) whose caller is not an
    administrator is answered 401 (no or a bad token) or 403 (a customer) before its body
    or query is parsed, so a refusal never describes an admin route's schema. The use
    cases check again (the CLI and tests call them too)."""

    def __init__(self, app: ASGIApp, api: FastAPI, prefix: str, *,
                 authenticate: Authenticate):
        self.app = app
        self.api = api  # the FastAPI app: its state holds the running app's services
        self.prefix = prefix
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        services = getattr(getattr(self.api, "state", None), "services", None)
        if (not path.startswith(self.prefix) or services is None
                or scope["method"] not in allowed_methods(self.api, path)[0]):
            await self.app(scope, receive, send)  # FastAPI's 404 or 405
            return
        authorization = header(scope, b"authorization")
        try:
            caller = await self.authenticate(services, authorization)
        except Exception as error:  # noqa: BLE001 - e.g. the database away: its answer
            scope["route"] = _Route(self.prefix + "*")
            await respond(send, *error_answer(error, path))
            return
        refusal: Exception | None = None
        if caller is None:
            refusal = Unauthorized(None if bearer_token(authorization) is None else
                                   "The access token is invalid, has expired, or was revoked")
        elif not caller.is_admin:
            refusal = Forbidden("This needs an administrator")
        if refusal is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Route(self.prefix + "*")
        await respond(send, *error_answer(refusal, path))
