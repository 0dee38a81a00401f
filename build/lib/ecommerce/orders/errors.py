from ecommerce.platform.errors import AppError


class OrderNotFound(AppError):
    status, code, message = 404, "ORDER_NOT_FOUND", "No such order"


class OrderNotCancellable(AppError):
    status, code, message = 409, "ORDER_NOT_CANCELLABLE", "This order cannot be cancelled"
