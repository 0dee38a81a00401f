"""Recharges under real parallelism: two server processes, hundreds of connections."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from ecommerce.audit import audit_database
from ecommerce.platform.database import Database
from ecommerce.wallet.models import balance_ledger
from tests.e2e.conftest import ShopContext, live_server, many_connections, token_for
from tests.factories import make_user


async def _user_with_token(database_url: str) -> tuple[int, dict[str, str], Database]:
    shop = ShopContext(database_url)
    user = await make_user(shop)
    await shop.ctx.close()
    return user.id, {"Authorization": f"Bearer {token_for(user.id)}"}, Database(database_url)


async def test_200_concurrent_recharges_sum_exactly(clean_db):
    user_id, headers, db = await _user_with_token(clean_db)
    amounts = [1_000 + i for i in range(200)]
    async with live_server(clean_db, workers=2) as server, many_connections(200) as client:
        responses = await asyncio.gather(*[
            client.post(f"{server.url}/api/balance/recharge", headers=headers,
                        json={"userId": user_id, "amount": amount}) for amount in amounts])
        assert [r.status_code for r in responses] == [200] * 200, {r.text for r in responses}
        balance = await client.get(f"{server.url}/api/balance/{user_id}", headers=headers)
    assert balance.json()["balance"] == sum(amounts)
    # Each answer saw a distinct balance: every recharge was applied on top of another.
    assert len({r.json()["newBalance"] for r in responses}) == 200
    try:
        async with db.uow(write=False) as uow:
            entries = (await uow.conn.execute(select(func.count()).select_from(balance_ledger)
                                              .where(balance_ledger.c.user_id == user_id))
                       ).scalar_one()
        assert entries == 200
        assert not any((await audit_database(db)).values())
    finally:
        await db.dispose()


async def test_20_concurrent_requests_with_one_key_charge_once(clean_db):
    user_id, headers, db = await _user_with_token(clean_db)
    keyed = {**headers, "Idempotency-Key": "flash-top-up"}
    async with live_server(clean_db, workers=2) as server, many_connections(20) as client:
        responses = await asyncio.gather(*[
            client.post(f"{server.url}/api/balance/recharge", headers=keyed,
                        json={"userId": user_id, "amount": 7_777}) for _ in range(20)])
        balance = await client.get(f"{server.url}/api/balance/{user_id}", headers=headers)
    assert {r.status_code for r in responses} == {200}, {r.text for r in responses}
    assert {r.text for r in responses} == {responses[0].text}
    assert responses[0].json() == {"userId": user_id, "newBalance": 7_777}
    assert balance.json()["balance"] == 7_777
    try:
        assert not any((await audit_database(db)).values())
    finally:
        await db.dispose()
