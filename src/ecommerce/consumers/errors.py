from ecommerce.platform.errors import AppError


class ConsumerNotFound(AppError):
    status, code, message = 404, "CONSUMER_NOT_FOUND", "No such consumer"


class EventNotFound(AppError):
    status, code, message = 404, "EVENT_NOT_FOUND", "No such event"


class EventNotRetryable(AppError):
    status, code, message = 409, "EVENT_NOT_RETRYABLE", "Only a FAILED event can be retried"
