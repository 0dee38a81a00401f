"""The composition root's context: what a running app holds (settings, database, Redis,
clock, limits, the domains' shared objects), built in the app's lifespan (never at import
time), and `Ctx`, the dependency through which routes reach it. platform/ knows none of
this: the domains are wired together here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from ecommerce.accounts.security import Passwords, Tokens
from ecommerce.catalog.listing import Listings
from ecommerce.coupons.gate import LocalGate, RedisGate
from ecommerce.coupons.issuer import Issuer
from ecommerce.events.outbox import Outbox
from ecommerce.payments.gateway import Gateway
from ecommerce.platform.cache import Cache, MemoryCache, RedisCache, redis_client
from ecommerce.platform.clock import Clock
from ecommerce.platform.database import Database
from ecommerce.platform.ratelimit import RateLimit, make_limiter, make_storage
from ecommerce.platform.settings import Settings
from ecommerce.ranking.service import TopSellers

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class AppContext:
    settings: Settings
    db: Database
    redis: Redis | None
    clock: Clock
    login_limit: RateLimit
    login_account_limit: RateLimit
    claim_limit: RateLimit
    passwords: Passwords
    tokens: Tokens
    cache: Cache
    listings: Listings
    top_sellers: TopSellers
    coupon_gate: LocalGate | RedisGate
    coupon_issuer: Issuer
    gateway: Gateway | None = None  # the card payment gateway, if configured
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> AppContext:
        db = Database(settings.database_url, pool_size=settings.db_pool_size, events=Outbox())
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
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            clock=clock,
            login_limit=RateLimit("login", settings.rate_limit_login, limiter, fallback),
            login_account_limit=RateLimit("login-failures", settings.rate_limit_login_account,
                                          limiter, fallback),
            claim_limit=RateLimit("claim", settings.rate_limit_claim, limiter, fallback),
            passwords=Passwords(settings),
            tokens=Tokens(settings, clock),
            cache=cache,
            listings=Listings(cache, shared_generation=redis is not None),
            coupon_gate=(RedisGate(gate_redis, settings.redis_prefix)
                         if gate_redis is not None else LocalGate()),
            coupon_issuer=Issuer(db),
            top_sellers=TopSellers(db, cache, settings.timezone,
                                   settings.top_sellers_cache_seconds),
            gateway=(Gateway(settings.payment_gateway_url, settings.payment_secret_key or "",
                             timeout=settings.payment_timeout_seconds)
                     if settings.payment_gateway_url else None),
        )

    async def close(self) -> None:
        self.passwords.close()
        await self.top_sellers.close()
        if self.gateway is not None:
            await self.gateway.close()
        if self.redis is not None:
            await self.redis.aclose()
        if isinstance(self.coupon_gate, RedisGate):
            await self.coupon_gate.close()
        await self.db.dispose()


async def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]
