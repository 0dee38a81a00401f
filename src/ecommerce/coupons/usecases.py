"""What a caller can do with coupons, each from authorisation to the answer's body. The
FastAPI routes and the lean path (platform/fastpath.py) are adapters over these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecommerce.accounts.errors import UserNotFound
from ecommerce.coupons import service
from ecommerce.coupons.errors import CouponAlreadyClaimed, CouponSoldOut
from ecommerce.coupons.gate import ALREADY, SOLD_OUT, CouponState, StateLoader
from ecommerce.coupons.issuer import Issuer
from ecommerce.coupons.schemas import ClaimIn, ClaimOut, CouponIn, CouponOut, HeldCouponOut
from ecommerce.coupons.service import Gate
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, ensure_self_or_admin, require_admin
from ecommerce.platform.ratelimit import RateLimit


def _coupon(row: Any) -> CouponOut:
    return CouponOut(**{**row._mapping,
                        "remaining_quantity": row.total_quantity - row.issued_quantity})


class Coupons:
    def __init__(self, db: Database, clock: Clock, gate: Gate, issuer: Issuer,
                 claim_limit: RateLimit):
        self.db = db
        self.clock = clock
        self.gate = gate
        self.issuer = issuer
        self.claim_limit = claim_limit

    async def create(self, caller: Principal, command: CouponIn) -> CouponOut:
        require_admin(caller)
        async with self.db.uow() as uow:
            row = await service.create_coupon(uow, command.model_dump(), self.clock.now())
        return _coupon(row)

    async def all_coupons(self, caller: Principal, page: Page) -> tuple[list[CouponOut], int]:
        require_admin(caller)
        async with self.db.uow(write=False) as uow:
            rows, total = await service.list_coupons(uow, page.size, page.offset)
        return [_coupon(row) for row in rows], total

    async def browse(self, available: bool, page: Page) -> tuple[list[CouponOut], int]:
        """Coupons a signed-in customer may look at (claimable now, or not yet ended)."""
        async with self.db.uow(write=False) as uow:
            rows, total = await service.browse(uow, available=available, now=self.clock.now(),
                                               limit=page.size, offset=page.offset)
        return [_coupon(row) for row in rows], total

    async def coupon(self, code: str) -> CouponOut:
        async with self.db.uow(write=False) as uow:
            return _coupon(await service.get_coupon(uow, code))

    async def held(self, caller: Principal, user_id: int, status: str | None, page: Page
                   ) -> tuple[list[HeldCouponOut], int]:
        ensure_self_or_admin(caller, user_id)
        async with self.db.uow(write=False) as uow:
            views, total = await service.held_coupons(uow, user_id, status, self.clock.now(),
                                                      page.size, page.offset)
        return [HeldCouponOut(**view) for view in views], total

    async def claim(self, caller: Principal, command: ClaimIn) -> tuple[int, Any]:
        """Claim a coupon for a user (themself, or anyone for an admin), within the user's
        claim rate: 200 with the held coupon, first come first served, durable once
        answered. The gate may answer for the losers; the database decides the winners."""
        ensure_self_or_admin(caller, command.user_id)
        await self.claim_limit.hit(str(command.user_id))
        claimed = await claim_coupon(self.db, self.gate, self.issuer, command.user_id,
                                     command.coupon_code, self.clock.now())
        return 200, ClaimOut(user_id=command.user_id, coupon_code=claimed.code,
                             user_coupon_id=claimed.user_coupon_id,
                             expires_at=claimed.expires_at).model_dump(mode="json",
                                                                        by_alias=True)


def state_loader(db: Database) -> StateLoader:
    """How a gate loads a coupon's state from the database, in a read of its own."""

    async def load(code: str) -> CouponState | None:
        async with db.uow(write=False) as uow:
            return await service.gate_state(uow, code)

    return load


async def claim_coupon(db: Database, gate: Gate, issuer: Issuer, user_id: int, code: str,
                       now: datetime) -> service.Claimed:
    """One claim through the gate and, if it lets it through, the database's decision
    (written with the other claims waiting for the same coupon); the gate hears the outcome
    (a seat is kept only for a real holder)."""
    code = code.upper()
    refusal = service.gate_refusal(await gate.enter(code, user_id, now, state_loader(db)))
    if refusal is not None:
        raise refusal
    try:
        claimed = await issuer.issue(code, user_id, now)
    except service.HolderRefused as refused:  # rolled back: read why in a read of its own
        async with db.uow(write=False) as uow:
            held = await service.holds(uow, refused.coupon_id, user_id)
        await gate.lost(code, user_id, ALREADY if held else "ERROR")
        raise (CouponAlreadyClaimed() if held else UserNotFound()) from None
    except CouponAlreadyClaimed:
        await gate.lost(code, user_id, ALREADY)
        raise
    except CouponSoldOut:
        await gate.lost(code, user_id, SOLD_OUT)
        raise
    except BaseException:
        await gate.lost(code, user_id, "ERROR")
        raise
    await gate.won(code, user_id)
    return claimed
