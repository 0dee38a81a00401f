"""The browser front end: a storefront and an admin console, static files that speak to the
JSON API. Served under /shop/ by the same app; / redirects there."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from ecommerce.seed_data import english_names

STATIC = Path(__file__).resolve().parent / "static"


def mount_storefront(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/shop/", status_code=307)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    names = english_names()

    @app.get("/shop/names.json", include_in_schema=False)
    async def demo_names() -> JSONResponse:
        """The demo catalog's names in English, for the storefront's English view (a shop's
        own names are shown as they are)."""
        return JSONResponse(names, headers={"Cache-Control": "max-age=3600"})

    app.mount("/shop", StaticFiles(directory=STATIC, html=True), name="shop")
