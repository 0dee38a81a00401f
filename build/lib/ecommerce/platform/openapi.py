"""The OpenAPI document says what the API really answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def document_errors_truthfully(app: FastAPI) -> None:
    """Drop FastAPI's default `422 Validation Error`: this API answers invalid requests
    with `400 INVALID_REQUEST` (documented on every route by `errors.responses`), and 422
    only for a reused Idempotency-Key, where the route lists it itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422")
                if answer is not None and _is_fastapi_default(answer):
                    del operation["responses"]["422"]
                if "requestBody" in operation:  # platform.http.BodyGuard answers these
                    for status, code in (("413", "PAYLOAD_TOO_LARGE"),
                                         ("415", "UNSUPPORTED_MEDIA_TYPE")):
                        operation["responses"].setdefault(status, {
                            "description": code, "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_fastapi_default(answer: dict[str, Any]) -> bool:
    content = answer.get("content", {}).get("application/json", {})
    return content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError")
