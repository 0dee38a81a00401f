"""The lean read (`ecommerce.platform.fastpath`) of `GET /api/products/top`: a query its
route's `TopQuery` accepts is answered here by the same use case; anything else goes to
the route."""

from __future__ import annotations

from starlette.types import Scope

from ecommerce.platform.fastpath import Answer, query_model
from ecommerce.platform.services import Services
from ecommerce.ranking.schemas import TopQuery
from ecommerce.ranking.usecases import Ranking

TOP_PATH = "/api/products/top"


async def top_products(services: Services, scope: Scope) -> Answer | None:
    query = query_model(TopQuery, scope)
    if query is None:
        return None
    return 200, await services[Ranking].top(query), None
