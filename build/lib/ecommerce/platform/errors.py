"""One error base class; every domain error is a subclass rendered by one handler."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    code: str = "BAD_REQUEST"
    message: str = "Bad request"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or type(self).message
        self.headers = headers
        super().__init__(self.message)


class InvalidRequest(AppError):
    status, code, message = 400, "INVALID_REQUEST", "The request is not valid"


class Unauthorized(AppError):
    status, code, message = 401, "UNAUTHORIZED", "Missing or invalid access token"

    def __init__(self, message: str | None = None):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status, code, message = 403, "FORBIDDEN", "You may not act for this user"


class NotFound(AppError):
    status, code, message = 404, "NOT_FOUND", "No such resource"


class MethodNotAllowed(AppError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "Method not allowed on this path"


class IdempotencyKeyReused(AppError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was used with a different request"


class IdempotencyKeyInProgress(AppError):
    status, code = 409, "IDEMPOTENCY_KEY_IN_PROGRESS"
    message = "A request with this Idempotency-Key is still being processed"


class RateLimited(AppError):
    status, code, message = 429, "RATE_LIMITED", "Too many requests; retry later"

    def __init__(self, retry_after: int):
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "A backing service is unavailable"


class ServerBusy(AppError):
    status, code, message = 503, "SERVER_BUSY", "The server is busy; retry shortly"

    def __init__(self, message: str | None = None, retry_after: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class PayloadTooLarge(AppError):
    status, code = 413, "PAYLOAD_TOO_LARGE"
    message = "The request body is too large"


class UnsupportedMediaType(AppError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"
    message = "This endpoint takes a JSON body (Content-Type: application/json)"


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each status with its possible codes. Every route
    may answer 400 (invalid request) and 503 (database or Redis unreachable)."""
    from ecommerce.platform.schemas import ErrorBody

    by_status: dict[int, list[type[AppError]]] = {}
    for error in (InvalidRequest, *errors, ServiceUnavailable):
        by_status.setdefault(error.status, []).append(error)
    return {
        status: {
            "model": ErrorBody,
            "description": ", ".join(sorted({e.code for e in group})),
        }
        for status, group in sorted(by_status.items())
    }
