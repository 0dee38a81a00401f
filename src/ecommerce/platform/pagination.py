"""Page selection for list endpoints: `page` from 1, `size` 1..100, total in X-Total-Count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Response

from ecommerce.platform.schemas import IntText

MAX_PAGE, MAX_SIZE = 1_000_000, 100


@dataclass(frozen=True)
class Page:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


async def _page(page: Annotated[int, Query(ge=1, le=MAX_PAGE), IntText] = 1,
                size: Annotated[int, Query(ge=1, le=MAX_SIZE), IntText] = 20) -> Page:
    return Page(page, size)


PageParams = Annotated[Page, Depends(_page)]


def set_total(response: Response, total: int) -> None:
    response.headers["X-Total-Count"] = str(total)
