from ecommerce.platform.errors import AppError


class PaymentMethodUnavailable(AppError):
    status, code = 409, "PAYMENT_METHOD_UNAVAILABLE"
    message = "Card payment is not available (no payment gateway is configured)"


class PaymentAmountMismatch(AppError):
    status, code = 400, "PAYMENT_AMOUNT_MISMATCH"
    message = "The amount does not match what is to be paid by card"


class PaymentDeclined(AppError):
    """The gateway refused the payment: its code and message are in ours."""

    status, code, message = 402, "PAYMENT_DECLINED", "The card payment was declined"

    def __init__(self, gateway_code: str, gateway_message: str):
        super().__init__(f"{gateway_code}: {gateway_message or 'declined'}")
        self.gateway_code = gateway_code


class NotPayable(AppError):
    status, code, message = 409, "ORDER_NOT_PAYABLE", "This payment can no longer be confirmed"


class ChargeNotFound(AppError):
    status, code, message = 404, "CHARGE_NOT_FOUND", "No such charge"
