"""Every table, imported in one place for Alembic and the tests."""

from ecommerce.accounts.models import users  # noqa: F401
from ecommerce.catalog.models import (  # noqa: F401
    catalog_state,
    categories,
    products,
    stock_movements,
)
from ecommerce.consumers.models import consumer_cursors, consumer_deliveries  # noqa: F401
from ecommerce.coupons.models import coupon_events, coupons, user_coupons  # noqa: F401
from ecommerce.events.models import outbox  # noqa: F401
from ecommerce.orders.models import order_items, orders  # noqa: F401
from ecommerce.payments.models import payments, stray_approvals  # noqa: F401
from ecommerce.platform.database import metadata
from ecommerce.platform.models import idempotency_keys  # noqa: F401
from ecommerce.ranking.models import product_sales_daily  # noqa: F401
from ecommerce.wallet.models import balance_ledger, wallets  # noqa: F401

__all__ = ["metadata"]
