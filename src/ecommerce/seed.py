"""`ecommerce seed --demo`: a small, realistic shop to try things with."""

from __future__ import annotations

from datetime import timedelta

from ecommerce.accounts import repository as accounts_repo
from ecommerce.catalog import service as catalog
from ecommerce.context import AppContext
from ecommerce.coupons import service as coupons
from ecommerce.platform.settings import Settings
from ecommerce.seed_data import CATEGORIES, COUPONS, PRODUCTS
from ecommerce.wallet import service as wallet

DEMO_CUSTOMER = ("demo", "demo-password")
DEMO_ADMIN = ("admin", "admin-password")


async def run_seed(settings: Settings) -> str:
    """Load the demo data once; returns what was done."""
    ctx = AppContext.build(settings)
    try:
        async with ctx.db.uow(write=False) as uow:
            if await accounts_repo.get_by_username(uow.conn, DEMO_CUSTOMER[0]) is not None:
                return (f"demo data already present: customer {DEMO_CUSTOMER[0]}/"
                        f"{DEMO_CUSTOMER[1]}, admin {DEMO_ADMIN[0]}/{DEMO_ADMIN[1]} (unless "
                        "ADMIN_USERNAME is set)")
        user_id = await ctx.accounts.sign_up(*DEMO_CUSTOMER)
        if not (settings.admin_username and settings.admin_password):
            await ctx.accounts.ensure_admin(*DEMO_ADMIN)
        async with ctx.db.uow() as uow:
            await wallet.recharge(uow, user_id, 500_000, ctx.clock.now())
        async with ctx.db.uow() as uow:
            for slug, name, _ in CATEGORIES:
                await catalog.create_category(uow, slug, name, ctx.clock.now())
            for category, name, _, description, _, price, stock in PRODUCTS:
                await catalog.create_product(uow, ctx.listings, name=name,
                                             description=description, price=price, stock=stock,
                                             category=category, now=ctx.clock.now())
            now = ctx.clock.now()
            for coupon in COUPONS:
                values = {key: value for key, value in coupon.items()
                          if key not in ("open_days", "name_en")}
                ends = now + timedelta(days=coupon["open_days"]) if "open_days" in coupon else None
                await coupons.create_coupon(uow, {**values, "issue_starts_at": now,
                                                  "issue_ends_at": ends, "expires_at": None},
                                            now)
        codes = ", ".join(coupon["code"] for coupon in COUPONS)
        return (f"demo data loaded: {len(CATEGORIES)} categories, {len(PRODUCTS)} products, "
                f"coupons {codes}; "
                f"customer {DEMO_CUSTOMER[0]}/{DEMO_CUSTOMER[1]} "
                f"with 500,000 won; admin {DEMO_ADMIN[0]}/{DEMO_ADMIN[1]} "
                "(unless ADMIN_USERNAME is set)")
    finally:
        await ctx.close()
