from ecommerce.platform.errors import AppError


class BalanceLimitExceeded(AppError):
    status, code = 400, "BALANCE_LIMIT_EXCEEDED"
    message = "A balance may not exceed 100,000,000 won"


class InsufficientBalance(AppError):
    status, code, message = 402, "INSUFFICIENT_BALANCE", "The balance is too low for this payment"


class TooManyUnpaidOrders(AppError):
    status, code = 409, "TOO_MANY_UNPAID_ORDERS"
    message = "Too many card orders are waiting for payment: pay or cancel one first"


class CardTopUpRequired(AppError):
    status, code = 403, "CARD_TOPUP_REQUIRED"
    message = ("Top up by card: POST /api/balance/charges, then pay at the gateway's "
               "checkout (a direct recharge is only for administrators here)")
