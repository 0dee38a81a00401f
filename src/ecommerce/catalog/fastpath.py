"""Lean paths (`ecommerce.platform.fastpath`) for the public reads a shop serves most:
`GET /api/products` and `GET /api/products/top`.

Their own work (a cache lookup and one indexed read) costs less than FastAPI's routing
and parameter handling around it. A query that `ProductQuery` / `TopQuery` (the routes'
own parameter models) accept, with no parameter unknown to them or given twice, is
answered here by the route's own use case; anything else goes to the FastAPI route,
which gives the documented answer or refusal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.types import Scope

from ecommerce.catalog import usecases
from ecommerce.catalog.schemas import ProductQuery, TopQuery

if TYPE_CHECKING:
    from ecommerce.context import AppContext

LIST_PATH, TOP_PATH = "/api/products", "/api/products/top"
Answer = tuple[int, Any, dict[str, str] | None]
Q = TypeVar("Q", bound=BaseModel)


def _names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


_NAMES = {ProductQuery: _names(ProductQuery), TopQuery: _names(TopQuery)}


def _query(model: type[Q], scope: Scope) -> Q | None:
    """The query as `model` validates it (decoded as Starlette does), or None."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                      keep_blank_values=True)
    values = dict(pairs)
    if (len(values) != len(pairs) or not _NAMES[model].issuperset(values)
            or "" in values.values()):
        return None
    try:
        return model.model_validate(values)
    except ValidationError:
        return None


async def list_products(ctx: AppContext, scope: Scope) -> Answer | None:
    query = _query(ProductQuery, scope)
    if query is None:
        return None
    views, total = await usecases.products(ctx, query)
    return 200, views, {"X-Total-Count": str(total)}


async def top_products(ctx: AppContext, scope: Scope) -> Answer | None:
    query = _query(TopQuery, scope)
    if query is None:
        return None
    return 200, await usecases.top_sellers(ctx, query), None
