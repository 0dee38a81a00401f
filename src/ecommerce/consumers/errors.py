from ecommerce.platform.errors import AppError


class ConsumerNotFound(AppError):
    status, code, message = 404, "CONSUMER_NOT_FOUND", "No such consumer"
