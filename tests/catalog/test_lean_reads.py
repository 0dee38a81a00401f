"""The product list and the top sellers are answered ahead of FastAPI when their query
validates (catalog/fastpath.py, ranking/fastpath.py). The lean answer must be the route's
answer, and everything the lean path does not take must reach the route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ecommerce.app import authenticate
from ecommerce.catalog import fastpath
from ecommerce.platform.fastpath import LeanRoutes
from ecommerce.ranking import fastpath as ranking_fastpath
from tests.factories import make_product
from tests.ranking.test_top_sellers import sell

ANSWERED = [
    "", "?sort=price_asc&size=2&page=2", "?category=drinks&inStock=true",
    "?keyword=TEA", "?keyword=%EC%82%AC%EA%B3%BC", "?minPrice=1500&maxPrice=4500&sort=name",
    "?sort=popular", "?inStock=false&sort=price_desc", "?category=nope", "?page=9",
    "?size=100&page=1000000", "?minPrice=0&maxPrice=100000000",
    "?minPrice=5000&maxPrice=1000",  # crossed bounds: a range with nothing in it
]
PASSED_ON = [  # refused by the route, or left to it (unknown, repeated or blank parameters)
    "?size=0", "?size=101", "?page=0", "?sort=cheapest", "?minPrice=-1", "?maxPrice=x",
    "?keyword=", "?category=%00", "?inStock=maybe",
    "?colour=red", "?sort=name&sort=price_asc", "?category=", "?min_price=5",
    "?minPrice=0.5", "?page=+2",
]
TOP_ANSWERED = ["", "?days=1", "?days=30&limit=50", "?limit=1"]
TOP_PASSED_ON = ["?days=0", "?days=31", "?limit=51", "?days=", "?foo=1", "?days=2&days=3",
                 "?days=2.5"]


@pytest.fixture
async def stocked(shop):
    for name, price, stock, category, description in [
        ("Apple Juice", 3_000, 10, "drinks", "fresh 사과 juice"),
        ("Banana Milk", 1_500, 0, "drinks", "바나나맛 우유"),
        ("녹차 라떼", 4_500, 7, "drinks", "Green TEA latte"),
        ("Desk Lamp", 35_000, 2, "home", "LED lamp, warm light"),
    ]:
        await make_product(shop, name=name, price=price, stock=stock, category=category,
                           description=description)
    products = (await shop.client.get("/api/products")).json()
    await sell(shop, [(products[0]["id"], 3), (products[2]["id"], 1)], shop.clock.now())


async def test_the_lean_answer_is_the_routes_answer(shop, stocked):
    """The same requests through the whole app and through FastAPI alone (no lean path)."""
    route_only = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app.api),
                                   base_url="http://shop.test")
    async with route_only:
        for path, queries in (("/api/products", ANSWERED + PASSED_ON),
                              ("/api/products/top", TOP_ANSWERED + TOP_PASSED_ON)):
            for query in queries:
                lean = await shop.client.get(path + query)
                full = await route_only.get(path + query)
                assert lean.status_code == full.status_code, query
                assert lean.headers["content-type"] == full.headers["content-type"], query
                assert lean.headers.get("x-total-count") == full.headers.get(
                    "x-total-count"), query
                if lean.status_code == 200:
                    assert lean.json() == full.json(), query
                else:
                    assert lean.status_code == 400, query
                    assert {k: v for k, v in lean.json().items() if k != "timestamp"} == {
                        k: v for k, v in full.json().items() if k != "timestamp"}, query


class Behind:
    """Stands where FastAPI stands behind the lean paths: records what reaches it."""

    def __init__(self, state: Any):
        self.state = state
        self.reached: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.reached.append(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_what_the_lean_path_answers_and_what_it_passes_on(shop, stocked):
    behind = Behind(shop.app.api.state)
    lean = LeanRoutes(behind, {}, {
        ("GET", fastpath.LIST_PATH): fastpath.list_products,
        ("GET", ranking_fastpath.TOP_PATH): ranking_fastpath.top_products},
        authenticate=authenticate)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lean),
                                 base_url="http://shop.test") as client:
        for path, answered, passed in (("/api/products", ANSWERED, PASSED_ON),
                                       ("/api/products/top", TOP_ANSWERED, TOP_PASSED_ON)):
            for query in answered:
                assert (await client.get(path + query)).status_code == 200, query
            assert behind.reached == []
            for query in passed:
                assert (await client.get(path + query)).status_code == 418, query
            assert behind.reached == [query.lstrip("?") for query in passed]
            behind.reached.clear()


@pytest.mark.parametrize("injected", ["OperationalError", "DataError", "IntegrityError"])
async def test_a_database_error_is_answered_alike_on_both_paths(shop, stocked, monkeypatch,
                                                               injected):
    """A failing read (injected at the service the use case calls) gets the same answer
    from the lean path and from the route: the one error mapping serves both."""
    import sqlalchemy.exc

    from ecommerce.catalog import service

    class Driver(Exception):
        sqlstate = "22021" if injected == "DataError" else "23505"

    async def fail(*args, **kwargs):  # noqa: ANN002, ANN003
        raise getattr(sqlalchemy.exc, injected)("SELECT 1", {}, Driver("injected"))

    monkeypatch.setattr(service, "list_products", fail)
    route_only = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app.api),
                                   base_url="http://shop.test")
    async with route_only:
        lean = await shop.client.get("/api/products?sort=name")
        full = await route_only.get("/api/products?sort=name")
    expected = {"OperationalError": 503, "DataError": 400, "IntegrityError": 409}[injected]
    assert lean.status_code == full.status_code == expected
    assert {k: v for k, v in lean.json().items() if k != "timestamp"} == {
        k: v for k, v in full.json().items() if k != "timestamp"}
    assert lean.headers.get("retry-after") == full.headers.get("retry-after")
