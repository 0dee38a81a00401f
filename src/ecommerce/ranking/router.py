from typing import Annotated

from fastapi import APIRouter, Query, Response

from ecommerce.platform.errors import responses
from ecommerce.platform.http import JsonResponse
from ecommerce.platform.services import provided
from ecommerce.ranking.schemas import TopProductOut, TopQuery
from ecommerce.ranking.usecases import Ranking

# Included before the catalog's router: /api/products/top ahead of /api/products/{id}.
router = APIRouter(tags=["catalog"])


@router.get("/api/products/top", response_model=list[TopProductOut], responses=responses())
async def top_products(ranking: Annotated[Ranking, provided(Ranking)],
                       query: Annotated[TopQuery, Query()]) -> Response:
    return JsonResponse(await ranking.top(query))
