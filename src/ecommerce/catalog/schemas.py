from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ecommerce.catalog.models import MAX_STOCK
from ecommerce.platform.pagination import MAX_PAGE, MAX_SIZE

# No NUL in a filter: every database then answers alike (PostgreSQL cannot take NUL).
from ecommerce.platform.schemas import (
    NO_NUL,
    ApiModel,
    ApiRequest,
    IntText,
    UtcTime,
    omittable,
)

Price = Annotated[int, Field(ge=1, le=100_000_000)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=5000)]
Sort = Literal["newest", "price_asc", "price_desc", "name", "popular"]
Filter = Annotated[str | None, Field(max_length=64, pattern=NO_NUL)]
PriceBound = Annotated[int | None, Field(ge=0, le=100_000_000), IntText]


class ProductQuery(BaseModel):
    """The query of `GET /api/products`: the route's parameters, and what its lean path
    (catalog/fastpath.py) validates before answering without FastAPI."""

    model_config = ConfigDict(alias_generator=to_camel)

    category: Filter = None
    keyword: Annotated[str | None, Field(min_length=1, max_length=100, pattern=NO_NUL)] = None
    min_price: PriceBound = None
    max_price: PriceBound = None
    in_stock: bool | None = None
    sort: Sort = "newest"
    page: Annotated[int, Field(ge=1, le=MAX_PAGE), IntText] = 1
    size: Annotated[int, Field(ge=1, le=MAX_SIZE), IntText] = 20


class CategoryIn(ApiRequest):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=100)]


class CategoryOut(ApiModel):
    id: int
    slug: str
    name: str


class CategoryWithCountOut(CategoryOut):
    product_count: int


class ProductIn(ApiRequest):
    name: Name
    description: Description = ""
    price: Price
    stock: Annotated[int, Field(ge=0, le=MAX_STOCK)]
    category: Slug


class ProductPatch(ApiRequest):
    """Any of the fields; each may be left out, none may be null."""

    name: Name = omittable()
    description: Description = omittable()
    price: Price = omittable()
    category: Slug = omittable()
    active: bool = omittable()


def _nonzero(schema: dict[str, Any]) -> None:
    schema["not"] = {"const": 0}


class StockChangeIn(ApiRequest):
    delta: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK, json_schema_extra=_nonzero)]

    @model_validator(mode="after")
    def _not_zero(self) -> "StockChangeIn":
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        return self


class ProductSummaryOut(ApiModel):
    id: int
    name: str
    price: int
    stock: int
    category: str
    description: str


class ProductOut(ProductSummaryOut):
    created_at: UtcTime
    updated_at: UtcTime


class AdminProductOut(ProductOut):
    active: bool
    sold_quantity: int
