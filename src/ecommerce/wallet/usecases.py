"""What a caller can do with a balance, each from authorisation to the answer."""

from __future__ import annotations

from typing import Any

from ecommerce.payments import machine
from ecommerce.payments.schemas import ConfirmIn
from ecommerce.payments.usecases import Payments
from ecommerce.platform import idempotency
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database, UnitOfWork
from ecommerce.platform.pagination import Page
from ecommerce.platform.principal import Principal, ensure_self_or_admin
from ecommerce.wallet import service
from ecommerce.wallet.errors import CardTopUpRequired
from ecommerce.wallet.schemas import (
    BalanceOut,
    LedgerEntryOut,
    PaymentOptionsOut,
    RechargeIn,
    RechargeOut,
)
from ecommerce.wallet.topup import CardTopUps


class Wallet:
    """`direct_topup`: customers may credit their own balance without paying (the demo,
    or a shop that credits by other means); off, their top-up goes by card. An admin may
    always credit anyone's balance."""

    def __init__(self, db: Database, clock: Clock, payments: Payments, *, direct_topup: bool,
                 client_key: str | None = None, checkout_url: str | None = None):
        self.db = db
        self.clock = clock
        self.payments = payments
        self.direct_topup = direct_topup
        self.purpose = CardTopUps(client_key, checkout_url)
        payments.register(self.purpose)

    def options(self) -> PaymentOptionsOut:
        return PaymentOptionsOut(card_payments=self.payments.available,
                                 direct_top_up=self.direct_topup,
                                 checkout_url=self.purpose.checkout_url)

    async def balance(self, caller: Principal, user_id: int) -> BalanceOut:
        ensure_self_or_admin(caller, user_id)
        async with self.db.uow(write=False) as uow:
            amount = await service.balance_of(uow, user_id)
        return BalanceOut(user_id=user_id, balance=amount)

    async def recharge(self, caller: Principal, command: RechargeIn, key: str | None
                       ) -> tuple[int, Any]:
        """Credit a balance without a payment (one's own where the shop allows it, or
        anyone's for an admin), at most once per key."""
        ensure_self_or_admin(caller, command.user_id)
        if not caller.is_admin and not self.direct_topup:
            raise CardTopUpRequired()

        async def work(uow: UnitOfWork) -> tuple[int, Any]:
            new_balance = await service.recharge(uow, command.user_id, command.amount,
                                                 self.clock.now())
            return 200, RechargeOut(user_id=command.user_id, new_balance=new_balance
                                    ).model_dump(by_alias=True)

        return await idempotency.run(
            self.db, user_id=caller.user_id, key=key, operation="balance.recharge",
            payload=command.model_dump(), path="/api/balance/recharge", work=work)

    async def open_charge(self, caller: Principal, command: RechargeIn) -> tuple[int, Any]:
        """201: a PENDING top-up by card and what the gateway's checkout needs to pay it;
        refused now if the balance could not take it (400 BALANCE_LIMIT_EXCEEDED)."""
        ensure_self_or_admin(caller, command.user_id)
        self.payments.required()
        async with self.db.uow() as uow:
            await service.check_room(uow, command.user_id, command.amount)
            payment = await machine.open_payment(
                uow, kind=self.purpose.kind, user_id=command.user_id, order_id=None,
                amount=command.amount, now=self.clock.now(),
                hold_seconds=self.payments.terms.hold_seconds)
        return 201, self.purpose.body(payment)

    async def confirm_charge(self, caller: Principal, charge_id: int, command: ConfirmIn
                             ) -> tuple[int, Any]:
        """200 {userId, newBalance} once the card is charged (exactly once; a repeat
        answers the same), 202 while the gateway's answer is unknown, else the refusal
        as for an order."""
        return await self.payments.confirm(self.purpose.kind, charge_id, caller,
                                           command.payment_key, command.amount)

    async def history(self, caller: Principal, user_id: int, page: Page
                      ) -> tuple[list[LedgerEntryOut], int]:
        ensure_self_or_admin(caller, user_id)
        async with self.db.uow(write=False) as uow:
            rows, total = await service.history(uow, user_id, page.size, page.offset)
        return [LedgerEntryOut.model_validate(row._mapping) for row in rows], total
