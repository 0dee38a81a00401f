"""The lean path (`ecommerce.platform.fastpath`) for `POST /api/coupons/claim`.

In a sale almost every claim is a loser that the gate answers without the database, so the
cost of the claim is the cost of the framework around it. Well-formed claims by their own
user (or an admin) are answered here: the rate limit, then the same `service.claim` as the
route. tests/coupons exercise both sides (well-formed claims here, refusals through the
route)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Scope

from ecommerce.accounts.security import Principal
from ecommerce.coupons import service
from ecommerce.platform.schemas import MAX_ID

PATH = "/api/coupons/claim"


async def claim(ctx: Any, principal: Principal, body: bytes, scope: Scope
                ) -> tuple[int, Any] | None:
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
    if principal.user_id != user_id and not principal.is_admin:
        return None
    await ctx.claim_limit.hit(str(user_id))
    claimed = await service.claim(ctx.db, ctx.coupon_gate, user_id, code.upper(),
                                  ctx.clock.now())
    return 200, {"userId": user_id, "couponCode": claimed.code, "status": "ISSUED",
                 "userCouponId": claimed.user_coupon_id,
                 "expiresAt": claimed.expires_at.isoformat().replace("+00:00", "Z")}
