"""Builds the ASGI app. Nothing (engine, Redis client) is created at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ecommerce import __version__
from ecommerce.accounts.router import router as accounts_router
from ecommerce.accounts.usecases import Accounts
from ecommerce.catalog import fastpath as catalog_fastpath
from ecommerce.catalog.router import admin as catalog_admin_router
from ecommerce.catalog.router import router as catalog_router
from ecommerce.consumers import setup as consumer_setup
from ecommerce.consumers.router import admin as consumers_admin_router
from ecommerce.consumers.router import events_admin as events_admin_router
from ecommerce.context import AppContext
from ecommerce.coupons.router import admin as coupons_admin_router
from ecommerce.coupons.router import router as coupons_router
from ecommerce.coupons.usecases import Coupons
from ecommerce.orders.router import admin as orders_admin_router
from ecommerce.orders.router import router as orders_router
from ecommerce.orders.router import sales as sales_router
from ecommerce.orders.usecases import Orders
from ecommerce.payments import reconcile
from ecommerce.payments.router import admin as payments_admin_router
from ecommerce.payments.router import router as payments_router
from ecommerce.platform.clock import Clock
from ecommerce.platform.fastpath import AdminGate, LeanPost, LeanRoutes
from ecommerce.platform.http import (
    BodyGuard,
    MethodGuard,
    RequestContextMiddleware,
    install_error_handlers,
)
from ecommerce.platform.logging import configure_logging
from ecommerce.platform.openapi import document_errors_truthfully, serve_docs_offline
from ecommerce.platform.ops import lean_livez
from ecommerce.platform.ops import router as ops_router
from ecommerce.platform.principal import Principal
from ecommerce.platform.services import Services
from ecommerce.platform.settings import Settings
from ecommerce.ranking import fastpath as ranking_fastpath
from ecommerce.ranking.router import router as ranking_router
from ecommerce.wallet.router import options as payment_options_router
from ecommerce.wallet.router import router as wallet_router
from ecommerce.web import mount_storefront

log = logging.getLogger("ecommerce")


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               freeze_at_start: bool = False) -> ShopApp:
    """The app; `freeze_at_start` (a served worker, whose process is the app's alone):
    what is loaded by the end of the start (modules, the app, its context) is moved out of
    the garbage collector's sight, so a full collection, which stops the worker, scans
    only what requests left behind (decision 85)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await AppContext.open(settings, clock=clock)
        app.state.ctx = ctx
        app.state.services = ctx.services()
        if settings.admin_username and settings.admin_password:
            await ctx.accounts.ensure_admin(settings.admin_username, settings.admin_password)
        stop = asyncio.Event()
        beside = settings.run_consumers and not settings.consumers_apart
        tasks = (consumer_setup.start(settings, ctx.db, ctx.clock, ctx.redis, stop)
                 if beside else [])
        if settings.run_payment_jobs and ctx.gateway is not None:
            tasks.append(asyncio.create_task(reconcile.run_forever(
                ctx.payments, stop, settings.payment_reconcile_seconds)))
        if freeze_at_start:
            gc.collect()  # the start's own garbage is freed, not kept for good
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ctx.close()

    app = FastAPI(title="E-commerce service", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    install_error_handlers(app)
    # The top sellers' path before the catalog's /api/products/{id}.
    for router in (ops_router, accounts_router, wallet_router, payment_options_router,
                   ranking_router, catalog_router,
                   catalog_admin_router, coupons_router, coupons_admin_router, orders_router,
                   orders_admin_router, sales_router, events_admin_router, consumers_admin_router,
                   payments_router, payments_admin_router):
        app.include_router(router)
    mount_storefront(app)
    serve_docs_offline(app)
    document_errors_truthfully(app)
    return ShopApp(app, access_log=settings.access_log, max_body_bytes=settings.max_body_bytes)


async def authenticate(services: Services, authorization: str | None) -> Principal | None:
    """Who a request's token names, as the routes' `CurrentUser` reads it."""
    accounts: Accounts = services[Accounts]
    return await accounts.caller(authorization)


class ShopApp:
    """The ASGI entry point: request ids and metrics around everything, the admin gate,
    the lean paths for coupon claims, orders, the product list and the top sellers ahead
    of FastAPI, and FastAPI for all the rest. Attribute access (`state`, `router`,
    `openapi`, ...) goes to the FastAPI app."""

    def __init__(self, api: FastAPI, *, access_log: bool, max_body_bytes: int):
        self.api = api
        lean = LeanRoutes(
            api, {"/api/coupons/claim": LeanPost(Coupons, "claim"),
                  "/api/orders": LeanPost(Orders, "place", keyed=True),
                  "/api/orders/{orderId}/payment/confirm": LeanPost(Orders, "confirm_payment")},
            {("GET", "/livez"): lean_livez,
             ("GET", catalog_fastpath.LIST_PATH): catalog_fastpath.list_products,
             ("GET", ranking_fastpath.TOP_PATH): ranking_fastpath.top_products},
            authenticate=authenticate)
        gated = AdminGate(lean, api, "/api/admin/", authenticate=authenticate)
        guarded = MethodGuard(BodyGuard(gated, max_bytes=max_body_bytes), api)
        self._entry = RequestContextMiddleware(guarded, access_log=access_log)

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await self._entry(scope, receive, send)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.api, name)


def factory() -> ShopApp:
    """Entry point for `uvicorn --factory ecommerce.app:factory` (each worker process)."""
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings, freeze_at_start=True)
