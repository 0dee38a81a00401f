from ecommerce.platform.errors import AppError


class BalanceLimitExceeded(AppError):
    status, code = 400, "BALANCE_LIMIT_EXCEEDED"
    message = "A balance may not exceed 100,000,000 won"


class InsufficientBalance(AppError):
    status, code, message = 402, "INSUFFICIENT_BALANCE", "The balance is too low for this payment"
