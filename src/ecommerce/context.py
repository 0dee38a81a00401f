"""The composition root: what a running app holds (settings, database, Redis, clock,
caches, limits, the gateway) and each domain's use cases, built with the few
collaborators they need (`AppContext.open`, in the app's lifespan and the CLI, never at
import time). No domain imports this module: routes and lean paths find a domain's use
cases by class (`services()`, platform/services.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecommerce.accounts.security import Passwords, Tokens
from ecommerce.accounts.usecases import Accounts, Limits
from ecommerce.catalog.listing import Listings
from ecommerce.catalog.usecases import Catalog
from ecommerce.consumers import setup as consumer_setup
from ecommerce.consumers.usecases import ConsumerAdmin
from ecommerce.coupons.gate import LocalGate, RedisGate
from ecommerce.coupons.issuer import Issuer
from ecommerce.coupons.usecases import Coupons
from ecommerce.events.outbox import Outbox
from ecommerce.orders import payment as card_orders
from ecommerce.orders import writer
from ecommerce.orders.pricing import CardTerms
from ecommerce.orders.usecases import Checkout, Orders
from ecommerce.payments.gateway import Gateway
from ecommerce.payments.usecases import Payments, PaymentTerms
from ecommerce.platform.cache import Cache, MemoryCache, RedisCache, redis_client
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.ratelimit import RateLimit, make_limiter, make_storage
from ecommerce.platform.services import Services
from ecommerce.platform.settings import Settings
from ecommerce.ranking.service import TopSellers
from ecommerce.ranking.usecases import Ranking
from ecommerce.wallet import service as wallet_service
from ecommerce.wallet.usecases import Wallet

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class AppContext:
    settings: Settings
    db: Database
    redis: Redis | None
    clock: Clock
    cache: Cache
    listings: Listings
    top_sellers: TopSellers
    coupon_gate: LocalGate | RedisGate
    gateway: Gateway | None
    accounts: Accounts
    wallet: Wallet
    catalog: Catalog
    ranking: Ranking
    coupons: Coupons
    payments: Payments
    orders: Orders
    consumers: ConsumerAdmin
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def open(cls, settings: Settings, *, clock: Clock | None = None) -> AppContext:
        """Everything a running app holds; the order writer for this database, and how a
        card order's approval is applied, are chosen here, once."""
        ctx = cls.build(settings, clock=clock)
        ctx.orders.writer = await writer.choose(ctx.db)
        await card_orders.choose_one_call(ctx.db, ctx.orders.purpose)
        return ctx

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> AppContext:
        """The same, with the portable order writer (for tools that place no orders)."""
        db = Database(settings.database_url, pool_size=settings.db_pool_size,
                      overflow=settings.db_pool_overflow, events=Outbox())
        redis = gate_redis = None
        if settings.redis_url:
            redis = redis_client(settings.redis_url, decode_responses=True,
                                 socket_timeout=2, socket_connect_timeout=2,
                                 health_check_interval=10, max_connections=200)
            # The coupon gate bounds each call itself (asyncio.timeout) instead: redis-py's
            # socket timeout (5 s unless told None) wraps every send in asyncio.wait_for,
            # a task per call, a third of a flash sale winner's time in the worker.
            gate_redis = redis_client(settings.redis_url, decode_responses=True,
                                      socket_timeout=None, socket_connect_timeout=2,
                                      max_connections=200)
        clock = clock or Clock()
        cache: Cache = (RedisCache(redis, settings.redis_prefix) if redis is not None
                        else MemoryCache())
        limiter = make_limiter(make_storage(settings.redis_url, settings.redis_prefix))
        fallback = make_limiter(make_storage(None)) if settings.redis_url else None

        def limit(name: str, rate: str) -> RateLimit:
            return RateLimit(name, rate, limiter, fallback)

        listings = Listings(cache, shared_generation=redis is not None)
        top_sellers = TopSellers(db, cache, settings.timezone,
                                 settings.top_sellers_cache_seconds)
        coupon_gate = (RedisGate(gate_redis, settings.redis_prefix)
                       if gate_redis is not None else LocalGate())
        gateway = (Gateway(settings.payment_gateway_url, settings.payment_secret_key or "",
                           timeout=settings.payment_timeout_seconds)
                   if settings.payment_gateway_url else None)
        payments = Payments(db, clock, gateway, PaymentTerms(
            timeout_seconds=settings.payment_timeout_seconds,
            settle_grace_seconds=settings.payment_settle_grace_seconds,
            hold_seconds=settings.payment_hold_seconds,
            recheck_seconds=settings.payment_recheck_seconds,
            recheck_hours=settings.payment_recheck_hours))
        checkout = Checkout(settings.payment_client_key, settings.checkout_url)
        return cls(
            settings=settings, db=db, redis=redis, clock=clock, cache=cache,
            listings=listings, top_sellers=top_sellers, coupon_gate=coupon_gate,
            gateway=gateway,
            accounts=Accounts(
                db, Passwords(settings), Tokens(settings, clock), clock,
                Limits(limit("login", settings.rate_limit_login),
                       limit("login-failures", settings.rate_limit_login_account),
                       limit("signup", settings.rate_limit_signup)),
                signed_up=wallet_service.open_wallet,
                version_interval=settings.token_check_seconds),
            wallet=Wallet(db, clock, payments, direct_topup=settings.direct_topup,
                          client_key=checkout.client_key, checkout_url=checkout.url),
            catalog=Catalog(db, clock, listings),
            ranking=Ranking(top_sellers, clock),
            coupons=Coupons(db, clock, coupon_gate, Issuer(db),
                            limit("claim", settings.rate_limit_claim)),
            payments=payments,
            orders=Orders(db, clock, listings, settings.timezone, writer.PortableWriter(),
                          payments, CardTerms(
                              hold_seconds=settings.payment_hold_seconds,
                              per_user=settings.payment_pending_per_user,
                              max_quantity=settings.payment_pending_max_quantity,
                              stock_percent=settings.payment_pending_stock_percent),
                          checkout),
            consumers=ConsumerAdmin(
                db, clock, configured=consumer_setup.configured(settings),
                broker=settings.broker, running=settings.run_consumers,
                data_platform=bool(settings.data_platform_url)),
        )

    def services(self) -> Services:
        """Each domain's use cases by class, for the routes and the lean paths."""
        return {type(service): service for service in (
            self.accounts, self.wallet, self.catalog, self.ranking, self.coupons,
            self.payments, self.orders, self.consumers)}

    async def close(self) -> None:
        self.accounts.passwords.close()
        await self.accounts.close()
        await self.top_sellers.close()
        if self.gateway is not None:
            await self.gateway.close()
        if self.redis is not None:
            await self.redis.aclose()
        if isinstance(self.coupon_gate, RedisGate):
            await self.coupon_gate.close()
        await self.db.dispose()
