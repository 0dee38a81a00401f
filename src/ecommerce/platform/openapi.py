"""The OpenAPI document says what the API really answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse


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
        _whole_bounds(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _whole_bounds(node: Any) -> None:
    """FastAPI's OpenAPI model stores numeric bounds as floats (`maximum: 100.0`); the
    pydantic schemas it came from had integers. Put them back (every bound is below
    2**53, so the float held it exactly)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _whole_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _whole_bounds(item)


def _is_fastapi_default(answer: dict[str, Any]) -> bool:
    content = answer.get("content", {}).get("application/json", {})
    return content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError")


def serve_docs_offline(app: FastAPI) -> None:
    """`/docs` with Swagger UI's files served from the installed package
    (swagger-ui-bundle-v2), not a CDN: it works on a machine without internet. The app is
    built with `docs_url=None, redoc_url=None`."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/favicon.ico")
