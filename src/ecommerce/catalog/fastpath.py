"""The lean read (`ecommerce.platform.fastpath`) for the public read a shop serves most:
`GET /api/products`.

Its own work (a cache lookup and one indexed read) costs less than FastAPI's routing and
parameter handling around it. A query that `ProductQuery` (the route's own parameter
model) accepts, with no parameter unknown to it or given twice, is answered here by the
route's own use case; anything else goes to the FastAPI route, which gives the documented
answer or refusal."""

from __future__ import annotations

from starlette.types import Scope

from ecommerce.catalog.schemas import ProductQuery
from ecommerce.catalog.usecases import Catalog
from ecommerce.platform.fastpath import Answer, query_model
from ecommerce.platform.services import Services

LIST_PATH = "/api/products"


async def list_products(services: Services, scope: Scope) -> Answer | None:
    query = query_model(ProductQuery, scope)
    if query is None:
        return None
    views, total = await services[Catalog].products(query)
    return 200, views, {"X-Total-Count": str(total)}
