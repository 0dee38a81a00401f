"""A lean path for `POST /api/coupons/claim`, the route a flash sale hammers.

In a sale almost every claim is a loser that the gate answers without the database, so the
cost of the claim is the cost of the framework around it. This ASGI layer answers the
well-formed, authorised claims itself (orjson, the token check, the rate limit, then the
same `service.claim` as the route) and hands everything
else, untouched, to the FastAPI route: invalid bodies, missing or bad tokens, claims for
another user. The route stays the documented, validated definition of the endpoint. It sits
outside FastAPI (see `ecommerce.app.ShopApp`), so it skips FastAPI's middleware stack too;
tests/coupons exercise both sides (well-formed claims here, refusals through the route)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecommerce.coupons import service
from ecommerce.platform.errors import AppError
from ecommerce.platform.http import UNAVAILABLE, error_body
from ecommerce.platform.schemas import MAX_ID

log = logging.getLogger("ecommerce.coupons.fastpath")
PATH = "/api/coupons/claim"
class _Route:  # what the metrics middleware reads to label the request
    path = PATH
_MAX_BODY = 4096


class ClaimFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app  # the FastAPI app: its state holds the running AppContext

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _MAX_BODY:
                break
        claim = self._recognise(getattr(self.app, "state", None), scope, body)
        if claim is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        ctx, user_id, code = claim
        scope["route"] = _Route
        try:
            await ctx.claim_limit.hit(str(user_id))
            claimed = await service.claim(ctx.db, ctx.coupon_gate, user_id, code,
                                          ctx.clock.now())
        except AppError as error:
            await _respond(send, error.status, error_body(error.status, error.code,
                                                          error.message, PATH), error.headers)
            return
        except (DBAPIError, *UNAVAILABLE) as error:
            log.error("claim failed: backing service unavailable",
                      extra={"error": type(error).__name__})
            await _respond(send, 503, error_body(503, "SERVICE_UNAVAILABLE",
                                                 "A backing service is unavailable; retry "
                                                 "shortly", PATH), {"Retry-After": "1"})
            return
        except Exception:  # outside FastAPI's handlers: answer in the error format here
            log.exception("claim failed")
            await _respond(send, 500, error_body(500, "INTERNAL_ERROR", "Internal error", PATH))
            return
        await _respond(send, 200, {
            "userId": user_id, "couponCode": claimed.code, "status": "ISSUED",
            "userCouponId": claimed.user_coupon_id,
            "expiresAt": claimed.expires_at.isoformat().replace("+00:00", "Z")})

    @staticmethod
    def _recognise(state: Any, scope: Scope, body: bytes) -> tuple[Any, int, str] | None:
        """(context, user id, code) for a well-formed claim the caller may make, else None."""
        ctx = getattr(state, "ctx", None)
        if ctx is None:
            return None
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer":
                    return None
                break
        if not token:
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        user_id, code = data.get("userId"), data.get("couponCode")
        if (type(user_id) is not int or not 1 <= user_id <= MAX_ID
                or not isinstance(code, str) or not 1 <= len(code) <= 40 or "\x00" in code):
            return None
        principal = ctx.tokens.read(token.strip())
        if principal is None or (principal.user_id != user_id and not principal.is_admin):
            return None
        return ctx, user_id, code.upper()


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


async def _respond(send: Send, status: int, payload: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
    raw = orjson.dumps(payload)
    header_list = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(raw)).encode())]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})
