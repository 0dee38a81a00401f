"""The top sellers, as anyone may ask for them (route and lean read)."""

from __future__ import annotations

from typing import Any

from ecommerce.platform.clock import Clock
from ecommerce.ranking.schemas import TopQuery
from ecommerce.ranking.service import TopSellers


class Ranking:
    def __init__(self, top_sellers: TopSellers, clock: Clock):
        self.top_sellers = top_sellers
        self.clock = clock

    async def top(self, query: TopQuery) -> list[dict[str, Any]]:
        """The top sellers of the last `days` shop days, best first."""
        top = await self.top_sellers.top_products(self.clock.now(), query.days, query.limit)
        return [{"rank": rank, "productId": row.id, "name": row.name, "price": row.price,
                 "stock": row.stock, "soldQuantity": sold}
                for rank, (row, sold) in enumerate(top, start=1)]
