"""The one error mapping (platform/http.error_answer) for database errors that reach it
wrapped in SQLAlchemy's generic DBAPIError."""

from __future__ import annotations

import asyncpg.exceptions
from sqlalchemy.exc import DBAPIError

from ecommerce.platform.http import error_answer


def _wrapped(cause: BaseException) -> DBAPIError:
    """As SQLAlchemy raises it when the driver fails while a pool opens its first
    connection: the driver's error is the cause of the adapter's, which DBAPIError wraps."""
    adapter = Exception(str(cause))
    adapter.__cause__ = cause
    return DBAPIError("show transaction isolation level", {}, adapter)


def test_a_connection_lost_while_it_was_being_opened_is_503():
    """Seen once in the fault test that cuts every connection: the very first connection
    of a worker's pool was terminated during SQLAlchemy's initialisation, and the order
    was answered 500."""
    for cause in (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
                  asyncpg.exceptions.AdminShutdownError("terminating connection")):
        status, body, headers = error_answer(_wrapped(cause), "/api/orders")
        assert (status, body["code"], headers) == (503, "SERVICE_UNAVAILABLE",
                                                   {"Retry-After": "1"}), cause


def test_another_database_error_is_still_500():
    status, body, _ = error_answer(_wrapped(asyncpg.exceptions.SyntaxOrAccessError("no")),
                                   "/api/orders")
    assert (status, body["code"]) == (500, "INTERNAL_ERROR")
