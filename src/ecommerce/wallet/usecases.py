"""What a caller can do with a balance, each from authorisation to the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecommerce.platform import idempotency
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, ensure_self_or_admin
from ecommerce.wallet import service
from ecommerce.wallet.schemas import BalanceOut, LedgerEntryOut, RechargeIn, RechargeOut

if TYPE_CHECKING:
    from ecommerce.context import AppContext


async def balance(ctx: AppContext, caller: Principal, user_id: int) -> BalanceOut:
    ensure_self_or_admin(caller, user_id)
    async with ctx.db.uow(write=False) as uow:
        amount = await service.balance_of(uow, user_id)
    return BalanceOut(user_id=user_id, balance=amount)


async def recharge(ctx: AppContext, caller: Principal, command: RechargeIn, key: str | None
                   ) -> tuple[int, Any]:
    """Top up a balance (one's own, or anyone's for an admin), at most once per key."""
    ensure_self_or_admin(caller, command.user_id)

    async def work(uow: UnitOfWork) -> tuple[int, Any]:
        new_balance = await service.recharge(uow, command.user_id, command.amount,
                                             ctx.clock.now())
        return 200, RechargeOut(user_id=command.user_id, new_balance=new_balance).model_dump(
            by_alias=True)

    return await idempotency.run(
        ctx.db, user_id=caller.user_id, key=key, operation="balance.recharge",
        payload=command.model_dump(), path="/api/balance/recharge", work=work)


async def history(ctx: AppContext, caller: Principal, user_id: int, page: Page
                  ) -> tuple[list[LedgerEntryOut], int]:
    ensure_self_or_admin(caller, user_id)
    async with ctx.db.uow(write=False) as uow:
        rows, total = await service.history(uow, user_id, page.size, page.offset)
    return [LedgerEntryOut.model_validate(row._mapping) for row in rows], total
