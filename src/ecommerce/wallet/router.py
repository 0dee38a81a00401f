
from typing import Annotated

from fastapi import APIRouter, Path, Response

from ecommerce.accounts.dependencies import CurrentUser
from ecommerce.accounts.errors import UserNotFound
from ecommerce.payments.errors import (
    ChargeNotFound,
    NotPayable,
    PaymentAmountMismatch,
    PaymentDeclined,
    PaymentMethodUnavailable,
)
from ecommerce.payments.schemas import ConfirmIn
from ecommerce.platform.errors import (
    Forbidden,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    Unauthorized,
    responses,
)
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.idempotency import IdempotencyKey
from ecommerce.platform.pagination import PageParams, set_total
from ecommerce.platform.schemas import MAX_ID, IntText, UserIdPath
from ecommerce.platform.services import provided
from ecommerce.wallet.errors import BalanceLimitExceeded, CardTopUpRequired
from ecommerce.wallet.schemas import (
    BalanceOut,
    ChargeOut,
    LedgerEntryOut,
    PaymentOptionsOut,
    RechargeIn,
    RechargeOut,
)
from ecommerce.wallet.usecases import Wallet

router = APIRouter(prefix="/api/balance", tags=["balance"])
options = APIRouter(tags=["balance"])
ChargeIdPath = Annotated[int, Path(alias="chargeId", ge=1, le=MAX_ID), IntText]
_PRIVATE = (Unauthorized, Forbidden, UserNotFound)
WalletDep = Annotated[Wallet, provided(Wallet)]


@options.get("/api/payment-options", response_model=PaymentOptionsOut, responses=responses())
async def payment_options(wallet: WalletDep) -> PaymentOptionsOut:
    """How this shop can be paid and topped up (no token needed): by card when a gateway
    is configured; directly (without paying) only where BALANCE_DIRECT_TOPUP allows it."""
    return wallet.options()


@router.get("/{userId}", response_model=BalanceOut, responses=responses(*_PRIVATE))
async def get_balance(user_id: UserIdPath, principal: CurrentUser, wallet: WalletDep) -> BalanceOut:
    return await wallet.balance(principal, user_id)


@router.post("/recharge", response_model=RechargeOut,
             responses=responses(*_PRIVATE, BalanceLimitExceeded, CardTopUpRequired,
                                 IdempotencyKeyReused, IdempotencyKeyInProgress))
async def recharge(body: RechargeIn, principal: CurrentUser, wallet: WalletDep,
                   key: IdempotencyKey = None) -> JsonResponse:
    """Credit a balance without a payment: an admin's for anyone; a customer's own only
    where BALANCE_DIRECT_TOPUP allows it (by default, only without a card gateway; else
    403 CARD_TOPUP_REQUIRED: top up by card, `POST /api/balance/charges`)."""
    status, payload = await wallet.recharge(principal, body, key)
    return JsonResponse(payload, status_code=status)


@router.post("/charges", status_code=201, response_model=ChargeOut,
             responses=responses(*_PRIVATE, BalanceLimitExceeded, PaymentMethodUnavailable))
async def open_charge(body: RechargeIn, principal: CurrentUser, wallet: WalletDep) -> JsonResponse:
    """Top up by card: a PENDING charge, paid at the gateway's checkout (`payment`), then
    confirmed with `POST /api/balance/charges/{chargeId}/confirm`."""
    status, payload = await wallet.open_charge(principal, body)
    return JsonResponse(payload, status_code=status)


@router.post("/charges/{chargeId}/confirm", response_model=RechargeOut,
             responses={**responses(*_PRIVATE, ChargeNotFound, PaymentAmountMismatch,
                                    PaymentDeclined, NotPayable, PaymentMethodUnavailable,
                                    BalanceLimitExceeded),
                        202: {"model": ChargeOut, "description": "PAYMENT_UNKNOWN: the "
                              "gateway did not answer; settled later from a lookup"}})
async def confirm_charge(charge_id: ChargeIdPath, body: ConfirmIn, principal: CurrentUser,
                         wallet: WalletDep) -> JsonResponse:
    """Credit the charge once the gateway confirms its card payment (exactly once)."""
    status, payload = await wallet.confirm_charge(principal, charge_id, body)
    return JsonResponse(payload, status_code=status)


@router.get("/{userId}/history", response_model=list[LedgerEntryOut],
            responses=responses(*_PRIVATE))
async def history(user_id: UserIdPath, principal: CurrentUser, wallet: WalletDep, page: PageParams,
                  response: Response) -> list[LedgerEntryOut]:
    views, total = await wallet.history(principal, user_id, page)
    set_total(response, total)
    return views
