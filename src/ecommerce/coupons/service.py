"""First-come-first-served coupons: definitions, claims, held coupons, use at checkout."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.exc import IntegrityError

from ecommerce.coupons import repository
from ecommerce.coupons.discount import discount_for
from ecommerce.coupons.errors import (
    CouponAlreadyClaimed,
    CouponCodeTaken,
    CouponNotActive,
    CouponNotFound,
    CouponNotUsable,
    CouponSoldOut,
)
from ecommerce.coupons.gate import (
    ALREADY,
    NOT_ACTIVE,
    SOLD_OUT,
    CouponState,
    LocalGate,
    RedisGate,
)
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.errors import AppError, InvalidRequest

Gate = LocalGate | RedisGate
ALREADY_USED = "This coupon has already been used"


async def create_coupon(uow: UnitOfWork, values: dict[str, Any], now: datetime) -> Any:
    """A new coupon definition; CouponCodeTaken if the code exists, InvalidRequest if it
    would be expired already."""
    if values.get("expires_at") is not None and values["expires_at"] <= now:
        raise InvalidRequest("expiresAt: must be in the future")
    values = {**values, "issue_starts_at": values.get("issue_starts_at") or now,
              "issued_quantity": 0, "created_at": now}
    try:
        await repository.add_coupon(uow.conn, values)
    except IntegrityError:
        raise CouponCodeTaken() from None
    return await repository.get_by_code(uow.conn, values["code"])


async def get_coupon(uow: UnitOfWork, code: str) -> Any:
    """The coupon with its counts, or CouponNotFound."""
    coupon = await repository.get_by_code(uow.conn, code.upper())
    if coupon is None:
        raise CouponNotFound()
    return coupon


async def list_coupons(uow: UnitOfWork, limit: int, offset: int) -> tuple[Sequence[Any], int]:
    """Every coupon, newest first, with its counts."""
    return (await repository.list_coupons(uow.conn, limit, offset),
            await repository.count_coupons(uow.conn))


async def browse(uow: UnitOfWork, *, available: bool, now: datetime, limit: int,
                 offset: int) -> tuple[Sequence[Any], int]:
    """What a customer may look at: the coupons claimable now (`available`), or every
    coupon whose window has not ended (upcoming and sold-out ones too)."""
    condition = (repository.claimable(now) if available
                 else repository.open_or_upcoming(now))
    return (await repository.list_where(uow.conn, condition, limit, offset),
            await repository.count_coupons(uow.conn, condition))


def _held_expiry(coupon: Any, issued_at: datetime) -> datetime:
    if coupon.valid_days is not None:
        return issued_at + timedelta(days=coupon.valid_days)
    return coupon.expires_at


@dataclass(frozen=True)
class Claimed:
    user_coupon_id: int
    code: str
    expires_at: datetime


def claim_window_end(coupon: Any) -> datetime | None:
    """When claims stop: the end of the issue window, or the coupon's expiry if earlier
    (an expired coupon cannot be claimed, even inside its issue window)."""
    ends = [moment for moment in (coupon.issue_ends_at, coupon.expires_at) if moment]
    return min(ends) if ends else None


def _claimable_at(coupon: Any, now: datetime) -> bool:
    ends = claim_window_end(coupon)
    return coupon.issue_starts_at <= now and (ends is None or now < ends)


async def gate_state(uow: UnitOfWork, code: str) -> CouponState | None:
    """What a gate needs of a coupon (quantity, claim window, holders), or None."""
    coupon = await repository.get_by_code(uow.conn, code)
    if coupon is None:
        return None
    holders = await repository.holders(uow.conn, coupon.id)
    return CouponState(coupon.total_quantity, coupon.issue_starts_at,
                       claim_window_end(coupon), holders)


def gate_refusal(verdict: str) -> AppError | None:
    """The error for a gate's early answer, or None to let the claim through."""
    refusal = {SOLD_OUT: CouponSoldOut, ALREADY: CouponAlreadyClaimed,
               NOT_ACTIVE: CouponNotActive}.get(verdict)
    return refusal() if refusal is not None else None


class HolderRefused(Exception):  # noqa: N818 - a signal: the holder row was refused
    """The holder insert broke the unique (coupon, user) key, or no such user exists."""

    def __init__(self, coupon_id: int):
        super().__init__(coupon_id)
        self.coupon_id = coupon_id


Outcome = Claimed | AppError
Stale = repository.Stale


def issues_in_one_statement(dialect: str) -> bool:
    """Whether `issue` writes its winners in one statement on this database (PostgreSQL)."""
    return dialect == "postgresql"


@dataclass(frozen=True)
class Terms:
    """What deciding a claim needs of a coupon, none of which changes once it is created
    (coupons are never edited): a process may keep them."""

    id: int
    total_quantity: int
    issue_starts_at: datetime
    issue_ends_at: datetime | None
    expires_at: datetime | None
    valid_days: int | None

    @classmethod
    def of(cls, coupon: Any) -> Terms:
        return cls(coupon.id, coupon.total_quantity, coupon.issue_starts_at,
                   coupon.issue_ends_at, coupon.expires_at, coupon.valid_days)


async def issue(uow: UnitOfWork, code: str, claims: Sequence[tuple[int, datetime]], *,
                terms: Terms | None, locked: bool, in_one_call: bool
                ) -> tuple[Terms, list[Outcome]]:
    """The database's decision for claims the gate let through: (user id, when claimed)
    in arrival order, each user at most once. Each claim in turn is refused if the user
    holds the coupon, the claim window was not open when they claimed, or none are left;
    the rest are issued: the issued count, one holder row each (unique per coupon and
    user) and their ledger entries. The coupon's terms and one outcome per claim.

    Without `terms`, the coupon and which claimers hold it are read without a lock, and the
    writes are guarded (that many left, the window open), so the row is locked only from
    the count's update to the commit. With the `terms` (kept from an earlier batch),
    nothing is read: each claimer is taken not to hold the coupon and enough to be left,
    which the writes' guards then check. Stale if the count's guard refuses (another
    process issued some meanwhile): decide again with `locked`, which reads under the row
    lock, so that the decision cannot go stale. HolderRefused if a holder row is refused
    (unique key, or no such user): decide again with the reads, or read why once this
    transaction has rolled back. `in_one_call` (PostgreSQL): the writes in one call of
    `shop_issue_coupons` (issue_coupons.sql). CouponNotFound for them all if there is no
    such code."""
    if terms is None or locked:
        coupon, held = await repository.with_holders(
            uow.conn, code, [user_id for user_id, _ in claims], lock=locked)
        if coupon is None:
            raise CouponNotFound()
        terms, left = Terms.of(coupon), coupon.total_quantity - coupon.issued_quantity
    else:
        held, left = set(), terms.total_quantity  # the writes' guards say otherwise
    outcomes: list[Outcome | None] = []  # None: issued, below
    winners: list[dict[str, Any]] = []
    for user_id, now in claims:
        if user_id in held:
            outcomes.append(CouponAlreadyClaimed())
        elif not _claimable_at(terms, now):
            outcomes.append(CouponNotActive())
        elif len(winners) >= left:
            outcomes.append(CouponSoldOut())
        else:
            outcomes.append(None)
            winners.append({"coupon_id": terms.id, "user_id": user_id, "issued_at": now,
                            "expires_at": _held_expiry(terms, now)})
    if winners:
        held_ids = await _write_winners(uow, terms.id, winners, in_one_call)
        issued = iter(zip(winners, held_ids, strict=True))
        for index, outcome in enumerate(outcomes):
            if outcome is None:
                row, held_id = next(issued)
                outcomes[index] = Claimed(held_id, code, row["expires_at"])
    return terms, cast(list[Outcome], outcomes)


async def _write_winners(uow: UnitOfWork, coupon_id: int, winners: list[dict[str, Any]],
                         in_one_call: bool) -> list[int]:
    try:
        if in_one_call:
            return await repository.issue_in_one_call(uow.conn, coupon_id, winners)
        times = [row["issued_at"] for row in winners]
        if not await repository.take(uow.conn, coupon_id, len(winners), min(times),
                                     max(times)):
            raise Stale()
        held_ids = await repository.add_held(uow.conn, winners)
    except IntegrityError:
        raise HolderRefused(coupon_id) from None
    await repository.add_events(uow.conn, [
        {"user_coupon_id": held_id, "coupon_id": coupon_id, "user_id": row["user_id"],
         "kind": "ISSUED", "order_id": None, "created_at": row["issued_at"]}
        for row, held_id in zip(winners, held_ids, strict=True)])
    return held_ids


async def holds(uow: UnitOfWork, coupon_id: int, user_id: int) -> bool:
    return bool(await repository.holds(uow.conn, coupon_id, user_id))


async def held_coupons(uow: UnitOfWork, user_id: int, status: str | None, now: datetime,
                       limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The user's coupons (newest first) with AVAILABLE / USED / EXPIRED as of now."""
    rows = await repository.held_by_user(uow.conn, user_id, status, now, limit, offset)
    total = await repository.count_held(uow.conn, user_id, status, now)
    return [held_view(row, now) for row in rows], total


def held_view(row: Any, now: datetime) -> dict[str, Any]:
    view = dict(row._mapping)
    if view["status"] == "AVAILABLE" and view["expires_at"] <= now:
        view["status"] = "EXPIRED"
    return view


@dataclass(frozen=True)
class AppliedCoupon:
    user_coupon_id: int
    code: str
    discount: int


async def use_held(uow: UnitOfWork, user_coupon_id: int, coupon_id: int, user_id: int,
                   order_id: int, now: datetime) -> None:
    """Mark a held coupon, found usable when the order was priced, used on this order;
    CouponNotUsable if it was used or expired meanwhile."""
    if not await repository.mark_used(uow.conn, user_coupon_id, order_id, now):
        raise CouponNotUsable(ALREADY_USED)
    await repository.add_event(uow.conn, user_coupon_id, coupon_id, user_id, "USED",
                               order_id, now)


async def usable(uow: UnitOfWork, user_id: int, code: str, subtotal: int, now: datetime
                 ) -> Any:
    """The user's held coupon with its terms, if it can pay towards this subtotal now;
    CouponNotUsable (saying why) if not. Reads only: the caller marks it used."""
    held = await repository.held_for_use(uow.conn, user_id, code.upper())
    if held is None:
        raise CouponNotUsable("You do not hold this coupon")
    if held.status != "AVAILABLE":
        raise CouponNotUsable(ALREADY_USED)
    if held.expires_at <= now:
        raise CouponNotUsable("This coupon has expired")
    if subtotal < held.min_order_amount:
        raise CouponNotUsable(f"This coupon needs an order of at least "
                              f"{held.min_order_amount} won")
    return held


def applied(held: Any, subtotal: int) -> AppliedCoupon:
    """What a usable held coupon takes off this subtotal."""
    return AppliedCoupon(held.user_coupon_id, held.coupon_code,
                         discount_for(held.discount_type, held.discount_value,
                                      held.max_discount_amount, subtotal))


async def held_by_id(uow: UnitOfWork, user_coupon_id: int) -> Any:
    """A held coupon by its id."""
    return await repository.held_by_id(uow.conn, user_coupon_id)


async def give_back(uow: UnitOfWork, user_coupon_id: int, coupon_id: int, user_id: int,
                    order_id: int, now: datetime) -> None:
    """Return a cancelled order's coupon to its holder (it shows EXPIRED if it has)."""
    if await repository.mark_available(uow.conn, user_coupon_id, order_id):
        await repository.add_event(uow.conn, user_coupon_id, coupon_id, user_id, "RESTORED",
                                   order_id, now)


async def audit(uow: UnitOfWork) -> list[str]:
    """Invariant 3: issued counts match holders and stay within the total; one per user."""
    problems = [f"coupon {row.code}: issued {row.issued_quantity} of {row.total_quantity} "
                f"but {row.held} held" for row in await repository.mismatched_counts(uow.conn)]
    problems += [f"user {row.user_id} holds coupon {row.coupon_id} {row.n} times"
                 for row in await repository.duplicate_holders(uow.conn)]
    return problems
