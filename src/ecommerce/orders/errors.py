from ecommerce.platform.errors import AppError


class OrderNotFound(AppError):
    status, code, message = 404, "ORDER_NOT_FOUND", "No such order"


class OrderNotCancellable(AppError):
    status, code, message = 409, "ORDER_NOT_CANCELLABLE", "This order cannot be cancelled"


class UnpaidOrderTooLarge(AppError):
    status, code = 409, "UNPAID_ORDER_TOO_LARGE"
    message = "Too many items for one order paid by card"
