"""What a caller can do with coupons, each from authorisation to the answer's body. The
FastAPI routes and the lean path (platform/fastpath.py) are adapters over these."""

from __future__ import annotations

from typing import Any

from ecommerce.coupons import service
from ecommerce.coupons.schemas import ClaimIn, ClaimOut
from ecommerce.platform.principal import Principal, ensure_self_or_admin


async def claim(ctx: Any, caller: Principal, command: ClaimIn) -> tuple[int, Any]:
    """Claim a coupon for a user (themself, or anyone for an admin), within the user's
    claim rate: 200 with the held coupon, first come first served."""
    ensure_self_or_admin(caller, command.user_id)
    await ctx.claim_limit.hit(str(command.user_id))
    claimed = await service.claim(ctx.db, ctx.coupon_gate, command.user_id,
                                  command.coupon_code, ctx.clock.now())
    return 200, ClaimOut(user_id=command.user_id, coupon_code=claimed.code,
                         user_coupon_id=claimed.user_coupon_id,
                         expires_at=claimed.expires_at).model_dump(mode="json", by_alias=True)
