"""A top-up by card (a charge) as a card payment's purpose (payments/machine.py): the
charge is the payment itself; an approval credits the balance exactly once (the ledger
entry names the payment, and a unique index takes each payment once), or, when the balance
can no longer take it, the payment is refunded."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from ecommerce.payments import machine
from ecommerce.payments.errors import ChargeNotFound, NotPayable
from ecommerce.payments.usecases import checkout_view
from ecommerce.platform.database import UnitOfWork
from ecommerce.platform.principal import Principal
from ecommerce.wallet import service
from ecommerce.wallet.errors import BalanceLimitExceeded
from ecommerce.wallet.schemas import ChargeOut, RechargeOut

# The charge's status as the customer sees it, from its payment's.
SHOWN = {"READY": "PENDING", "CONFIRMING": "PAYMENT_UNKNOWN", "DONE": "PAID",
         "FAILED": "FAILED", "EXPIRED": "EXPIRED", "VOIDED": "CANCELLED",
         "CANCEL_PENDING": "REFUNDED", "CANCELLED": "REFUNDED"}


class CardTopUps:
    kind: ClassVar[str] = "CHARGE"
    in_one_call = False  # a top-up is begun and applied in transactions (machine.py)

    def __init__(self, client_key: str | None, checkout_url: str | None):
        self.client_key = client_key
        self.checkout_url = checkout_url

    def body(self, payment: Any) -> dict[str, Any]:
        """A charge as answered: its status and what the gateway's checkout needs."""
        return ChargeOut(
            charge_id=payment.id, user_id=payment.user_id, amount=payment.amount,
            status=SHOWN[payment.status],  # type: ignore[arg-type]
            payment={**checkout_view(payment), "client_key": self.client_key,
                     "checkout_url": self.checkout_url},
        ).model_dump(mode="json", by_alias=True)

    async def owned(self, uow: UnitOfWork, charge_id: int, caller: Principal) -> Any:
        payment = await machine.get(uow, charge_id)
        if payment is None or payment.kind != self.kind or (
                payment.user_id != caller.user_id and not caller.is_admin):
            raise ChargeNotFound()
        return payment

    async def started(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        return None  # nothing is held while a top-up is paid

    async def applied(self, uow: UnitOfWork, payment: Any, now: datetime) -> Any:
        try:
            return {"new_balance": await service.recharge(
                uow, payment.user_id, payment.amount, now, payment_id=payment.id)}
        except BalanceLimitExceeded:  # the balance grew meanwhile: refunded instead
            return None

    async def began_in_one_call(self, uow: UnitOfWork, payment: Any, payment_key: str,
                                now: datetime) -> bool:
        raise AssertionError("a top-up is begun in a transaction")

    async def applied_in_one_call(self, uow: UnitOfWork, payment: Any,
                                  charged: dict[str, Any], now: datetime) -> Any:
        raise machine.NotInOneCall()

    async def released(self, uow: UnitOfWork, payment: Any, why: str, now: datetime) -> None:
        return None

    async def refunded(self, uow: UnitOfWork, payment: Any, now: datetime) -> None:
        return None

    async def answer(self, uow: UnitOfWork, payment: Any, applied: Any = None
                     ) -> tuple[int, Any]:
        """200 {userId, newBalance} once credited; 202 with the charge while the gateway's
        answer is unknown; a refunded one: the balance could not take it."""
        if payment.status == "DONE":
            balance = (applied["new_balance"] if applied
                       else await service.balance_of(uow, payment.user_id))
            return 200, RechargeOut(user_id=payment.user_id,
                                    new_balance=balance).model_dump(by_alias=True)
        if payment.status == "CONFIRMING":
            return 202, self.body(payment)
        if payment.status in ("CANCEL_PENDING", "CANCELLED"):
            raise BalanceLimitExceeded("The balance could not take this charge; it is refunded")
        raise await self.refusal(uow, payment)

    async def refusal(self, uow: UnitOfWork, payment: Any) -> Exception:
        return NotPayable(f"This charge is {SHOWN[payment.status]}")
