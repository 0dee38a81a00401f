from typing import Annotated

from pydantic import BaseModel, Field

from ecommerce.platform.schemas import ApiModel, IntText


class TopQuery(BaseModel):
    """The query of `GET /api/products/top` (route and lean path)."""

    days: Annotated[int, Field(ge=1, le=30), IntText] = 3
    limit: Annotated[int, Field(ge=1, le=50), IntText] = 5


class TopProductOut(ApiModel):
    rank: int
    product_id: int
    name: str
    price: int
    stock: int
    sold_quantity: int
