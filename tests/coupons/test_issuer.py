"""The claims' group commit (coupons/issuer.py) and the batch decision it runs
(coupons/service.issue), on every database: a batch decides each claim as it would alone,
PostgreSQL's one-call writes (issue_coupons.sql) leave the same rows as the portable
statements, a batch whose unlocked read went stale is decided again under the row lock, a
refused holder row costs only its own claim, and a storm of claims shares transactions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from ecommerce.accounts.errors import UserNotFound
from ecommerce.audit import audit_database
from ecommerce.coupons import service
from ecommerce.coupons import usecases as coupon_usecases
from ecommerce.coupons.errors import CouponAlreadyClaimed, CouponNotActive, CouponSoldOut
from ecommerce.coupons.issuer import Issuer
from ecommerce.coupons.models import coupon_events, coupons, user_coupons
from ecommerce.coupons.repository import ISSUE_COUPONS_SQL
from tests.factories import make_coupon, make_user


def _kind(outcome: object) -> str:
    return type(outcome).__name__


async def _rows(shop, code: str) -> dict:  # noqa: ANN001
    """What a batch left for a coupon: its count, its holders and their ledger entries."""
    async with shop.db.uow(write=False) as uow:
        coupon = (await uow.conn.execute(select(coupons).where(coupons.c.code == code))).one()
        held = (await uow.conn.execute(
            select(user_coupons.c.id, user_coupons.c.user_id, user_coupons.c.status,
                   user_coupons.c.issued_at, user_coupons.c.expires_at)
            .where(user_coupons.c.coupon_id == coupon.id))).all()
        ledger = (await uow.conn.execute(
            select(coupon_events.c.user_coupon_id, coupon_events.c.user_id,
                   coupon_events.c.kind, coupon_events.c.created_at)
            .where(coupon_events.c.coupon_id == coupon.id))).all()
    ids = {row.id: row.user_id for row in held}
    return {"issued": coupon.issued_quantity,
            "held": sorted((r.user_id, r.status, r.issued_at, r.expires_at) for r in held),
            "ledger": sorted((ids[r.user_coupon_id], r.user_id, r.kind, r.created_at)
                             for r in ledger)}


async def test_a_batch_decides_each_claim_as_it_would_alone(shop, db_kind):
    """One batch: a holder (already claimed), two winners, a claim from before the window
    opened, then more claimers than are left (sold out), in arrival order. On PostgreSQL the
    one-call writes and the portable statements leave the same rows."""
    now = shop.clock.now()
    users = [(await make_user(shop)).id for _ in range(6)]
    modes = [False, True] if db_kind == "postgres" else [False]
    left = {}
    for in_one_call in modes:
        code = f"BATCH-{int(in_one_call)}"
        await make_coupon(shop, code=code, quantity=3, starts_at=now - timedelta(hours=1),
                          valid_days=7)
        async with shop.db.uow() as uow:  # the first user already holds one
            await service.issue(uow, code, [(users[0], now)], terms=None, locked=True,
                                in_one_call=in_one_call)
        claims = [(users[0], now), (users[1], now), (users[2], now - timedelta(hours=2)),
                  (users[3], now), (users[4], now), (users[5], now)]
        async with shop.db.uow() as uow:
            _, outcomes = await service.issue(uow, code, claims, terms=None, locked=False,
                                              in_one_call=in_one_call)
        assert [_kind(o) for o in outcomes] == [
            "CouponAlreadyClaimed", "Claimed", "CouponNotActive", "Claimed", "CouponSoldOut",
            "CouponSoldOut"]
        rows = await _rows(shop, code)
        assert rows["issued"] == 3
        assert [held[0] for held in rows["held"]] == sorted([users[0], users[1], users[3]])
        assert all(held[3] == held[2] + timedelta(days=7) for held in rows["held"])
        assert [(entry[0], entry[2]) for entry in rows["ledger"]] == [
            (held[0], "ISSUED") for held in rows["held"]]
        claimed = {o.user_coupon_id for o in outcomes if isinstance(o, service.Claimed)}
        async with shop.db.uow(write=False) as uow:
            owners = dict((await uow.conn.execute(
                select(user_coupons.c.id, user_coupons.c.user_id)
                .where(user_coupons.c.id.in_(claimed)))).all())
        assert sorted(owners.values()) == [users[1], users[3]]  # each answer names its row
        left[in_one_call] = rows
    if len(left) == 2:
        assert left[True] == left[False]
    assert not any((await audit_database(shop.db)).values())


async def test_the_database_holds_the_function_this_checkout_ships(shop, db_kind):
    if db_kind != "postgres":
        pytest.skip("shop_issue_coupons is PostgreSQL's")
    async with shop.db.uow(write=False) as uow:
        source = (await uow.conn.execute(text(
            "SELECT prosrc FROM pg_proc WHERE proname = 'shop_issue_coupons'"))).scalar_one()
    assert source.strip() in ISSUE_COUPONS_SQL


async def test_a_batch_that_went_stale_is_decided_again_under_the_lock(shop):
    """The batch decides both its claimers win (5 are left, or, knowing the coupon's terms,
    without reading); before it writes, another transaction (another process) issues 4 and
    commits. Its guarded write is refused, and decided again: the first claimer wins the
    last coupon, the second is told it is sold out."""
    await make_coupon(shop, code="RACE", quantity=6)
    others = [(await make_user(shop)).id for _ in range(4)]
    first, second, early = [(await make_user(shop)).id for _ in range(3)]
    now = shop.clock.now()
    issuer = Issuer(shop.db)
    # A first claim: the issuer now knows the coupon's terms, and decides the next batch
    # without reading (the writes' guards check it).
    assert isinstance(await issuer.issue("RACE", early, now), service.Claimed)
    async with shop.db.uow() as uow:  # holds the coupon's row lock until it commits
        await service.issue(uow, "RACE", [(u, now) for u in others], terms=None, locked=True,
                            in_one_call=False)
        late = [asyncio.ensure_future(issuer.issue("RACE", user, now))
                for user in (first, second)]
        await asyncio.sleep(0.5)  # the batch has read 5 left and waits to write
        assert not any(claim.done() for claim in late)
    won, lost = await asyncio.gather(*late, return_exceptions=True)
    assert isinstance(won, service.Claimed)
    assert isinstance(lost, CouponSoldOut)
    rows = await _rows(shop, "RACE")
    assert rows["issued"] == 6
    assert sorted(held[0] for held in rows["held"]) == sorted([*others, first, early])
    assert not any((await audit_database(shop.db)).values())


async def test_a_refused_holder_row_costs_only_its_own_claim(shop):
    """A claim for a user who does not exist breaks the batch's insert: the batch rolls
    back and each claim is written alone."""
    await make_coupon(shop, code="GHOST", quantity=5)
    real = [(await make_user(shop)).id for _ in range(3)]
    now = shop.clock.now()
    issuer = Issuer(shop.db)
    outcomes = await asyncio.gather(
        *(issuer.issue("GHOST", user, now) for user in [real[0], 10**12, real[1], real[2]]),
        return_exceptions=True)
    assert [_kind(o) for o in outcomes] == ["Claimed", "HolderRefused", "Claimed", "Claimed"]
    assert (await _rows(shop, "GHOST"))["issued"] == 3
    with pytest.raises(UserNotFound):  # the use case reads why the row was refused
        await coupon_usecases.claim_coupon(shop.db, shop.ctx.coupons.gate, issuer, 10**12,
                                           "GHOST", now)
    assert not any((await audit_database(shop.db)).values())


async def test_a_storm_of_claims_shares_transactions(shop):
    """60 claims at once in one process: every one answered as if alone (40 issued, 20 sold
    out, a repeated claimer told it holds one), in a few holder inserts, not 60."""
    await make_coupon(shop, code="STORM", quantity=40)
    users = [(await make_user(shop)).id for _ in range(60)]
    now = shop.clock.now()
    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if "INSERT INTO user_coupons" in statement or "shop_issue_coupons(" in statement:
            inserts.append(statement)

    engine = shop.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        issuer = Issuer(shop.db)
        outcomes = await asyncio.gather(
            *(issuer.issue("STORM", user, now) for user in [*users, users[0]]),
            return_exceptions=True)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    kinds = [_kind(o) for o in outcomes]
    assert kinds.count("Claimed") == 40 and kinds.count("CouponSoldOut") == 20
    assert isinstance(outcomes[-1], CouponAlreadyClaimed | CouponSoldOut)
    assert [_kind(o) for o in outcomes[:40]] == ["Claimed"] * 40  # first come, first served
    assert 1 <= len(inserts) <= 3, inserts
    assert (await _rows(shop, "STORM"))["issued"] == 40
    assert not any((await audit_database(shop.db)).values())


async def test_a_batch_decided_without_reading_is_decided_again_when_a_holder_is_refused(
        shop):
    """Knowing the terms, the issuer writes a batch without reading who holds the coupon;
    a claimer who already holds it (claimed past the gate, e.g. while Redis was away)
    breaks the insert, and the batch is decided again from a read: the holder is told so,
    the others win."""
    await make_coupon(shop, code="AGAIN", quantity=10)
    users = [(await make_user(shop)).id for _ in range(4)]
    now = shop.clock.now()
    issuer = Issuer(shop.db)
    assert isinstance(await issuer.issue("AGAIN", users[0], now), service.Claimed)
    outcomes = await asyncio.gather(*(issuer.issue("AGAIN", user, now) for user in users),
                                    return_exceptions=True)
    assert [_kind(o) for o in outcomes] == [
        "CouponAlreadyClaimed", "Claimed", "Claimed", "Claimed"]
    assert (await _rows(shop, "AGAIN"))["issued"] == 4
    assert not any((await audit_database(shop.db)).values())


async def test_a_claim_before_the_window_is_not_active_in_a_batch_too(shop):
    now = shop.clock.now()
    await make_coupon(shop, code="LATER", quantity=5, starts_at=now + timedelta(hours=1))
    user = (await make_user(shop)).id
    with pytest.raises(CouponNotActive):
        await Issuer(shop.db).issue("LATER", user, now)
