from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ecommerce.catalog.models import MAX_STOCK
from ecommerce.platform.pagination import MAX_PAGE, MAX_SIZE
from ecommerce.platform.schemas import ApiModel, ApiRequest, UtcTime

Price = Annotated[int, Field(ge=1, le=100_000_000)]
Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=5000)]
Sort = Literal["newest", "price_asc", "price_desc", "name", "popular"]
NO_NUL = r"^[^\x00]*$"  # every database then answers alike (PostgreSQL cannot take NUL)
Filter = Annotated[str | None, Field(max_length=64, pattern=NO_NUL)]
PriceBound = Annotated[int | None, Field(ge=0, le=100_000_000)]


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
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    size: Annotated[int, Field(ge=1, le=MAX_SIZE)] = 20


class TopQuery(BaseModel):
    """The query of `GET /api/products/top` (route and lean path)."""

    days: Annotated[int, Field(ge=1, le=30)] = 3
    limit: Annotated[int, Field(ge=1, le=50)] = 5


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
    name: Name | None = None
    description: Description | None = None
    price: Price | None = None
    category: Slug | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> "ProductPatch":
        for field in self.model_fields_set:
            if getattr(self, field) is None:
                raise ValueError(f"{field} may be left out but not null")
        return self


class StockChangeIn(ApiRequest):
    delta: Annotated[int, Field(ge=-MAX_STOCK, le=MAX_STOCK)]

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


class TopProductOut(ApiModel):
    rank: int
    product_id: int
    name: str
    price: int
    stock: int
    sold_quantity: int
