from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from ecommerce.app import create_app
from tests.backends import BEFORE_THE_DATABASE
from tests.factories import assert_error, make_admin, make_product, make_user


@pytest.fixture
async def catalog(shop):
    """Six products in two categories with known prices, names and stock."""
    ids = {}
    for name, price, stock, category, description in [
        ("Apple Juice", 3_000, 10, "drinks", "fresh 사과 juice"),
        ("Banana Milk", 1_500, 0, "drinks", "바나나맛 우유"),
        ("Cherry Cola", 2_000, 5, "drinks", "sparkling"),
        ("녹차 라떼", 4_500, 7, "drinks", "Green TEA latte"),
        ("Desk Lamp", 35_000, 2, "home", "LED lamp, warm light"),
        ("Egg Chair", 250_000, 1, "home", "designer chair"),
    ]:
        ids[name] = await make_product(shop, name=name, price=price, stock=stock,
                                       category=category, description=description)
    return ids


async def names(client, query: str = "") -> list[str]:
    response = await client.get(f"/api/products{query}")
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()]


async def test_default_is_newest_first_with_total(client, catalog):
    response = await client.get("/api/products")
    assert response.headers["X-Total-Count"] == "6"
    assert [p["name"] for p in response.json()] == list(reversed(list(catalog)))
    first = response.json()[0]
    assert set(first) == {"id", "name", "price", "stock", "category", "description"}


async def test_filters(client, catalog):
    assert await names(client, "?category=home&sort=name") == ["Desk Lamp", "Egg Chair"]
    assert await names(client, "?category=nowhere") == []
    assert await names(client, "?minPrice=2000&maxPrice=4500&sort=price_asc") == [
        "Cherry Cola", "Apple Juice", "녹차 라떼"]
    assert "Banana Milk" not in await names(client, "?inStock=true")
    assert await names(client, "?inStock=false") == ["Banana Milk"]


@pytest.mark.parametrize("keyword, expected", [
    ("juice", ["Apple Juice"]), ("JUICE", ["Apple Juice"]), ("사과", ["Apple Juice"]),
    ("tea", ["녹차 라떼"]), ("녹차", ["녹차 라떼"]), ("LAT", ["녹차 라떼"]),
    ("la", ["Cherry Cola", "녹차 라떼", "Desk Lamp"]),
    ("%", []), ("_", []), ("zzz", []),
])
async def test_keyword_matches_name_or_description_case_insensitively(client, catalog, keyword,
                                                                      expected):
    found = await names(client, f"?keyword={keyword.replace('%', '%25')}&sort=price_asc")
    assert sorted(found) == sorted(expected)


async def test_keywords_with_quotes_backslashes_and_sql_are_plain_text(shop, client, catalog):
    """The keyword is put into the statement as a literal (decision 37): quotes,
    backslashes, wildcards and SQL in it only ever match as text."""
    await make_product(shop, name="Dad's Mug \\ 100% Blue_Glaze", price=9_000)
    found = ["Dad's Mug \\ 100% Blue_Glaze"]
    for keyword in ("d's mug", "mug \\ 1", "\\", "100%", "e_g", "'"):
        assert await names(client, f"?keyword={quote(keyword)}") == found, keyword
    for keyword in ("'; DROP TABLE products; --", "' OR '1'='1", "\\'", "%'%", "\\%"):
        assert await names(client, f"?keyword={quote(keyword)}") == [], keyword
    assert len(await names(client, "?size=100")) == 7


async def test_the_keyword_reaches_the_database_as_a_literal(shop, catalog):
    """So PostgreSQL plans each search for its own pattern (a prepared `LIKE $1` turns
    generic after five runs, and that plan reads the whole trigram index for a two-letter
    word)."""
    from sqlalchemy import event

    from ecommerce.catalog import service

    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    engines = [shop.db.engine.sync_engine, shop.db.inline_reader]
    for engine in filter(None, engines):
        event.listen(engine, "before_cursor_execute", record)
    try:
        async with shop.db.uow(write=False) as uow:
            rows, total, _ = await service.list_products(
                uow, shop.ctx.listings, category=None, keyword="녹차", min_price=None,
                max_price=None, in_stock=None, sort="price_asc", limit=20, offset=0)
    finally:
        for engine in filter(None, engines):
            event.remove(engine, "before_cursor_execute", record)
    assert [row.name for row in rows] == ["녹차 라떼"] and total == 1
    searches = [(sql, params) for sql, params in seen if "LIKE" in sql]
    # ('%%' on MySQL, whose driver formats the statement with its parameters)
    assert searches and all(re.search("'%%?녹차%%?'", sql) for sql, _ in searches)
    assert not any("녹차" in repr(params) for _, params in searches)


async def test_keyword_pages_carry_the_total_of_all_matches(shop, client, catalog):
    # On MySQL a keyword search counts in the same pass as its page (decision 27); the
    # total must be the same on every page, and a page past the end still counts.
    await make_product(shop, name="Éclair Box", price=9_000, description="ÉTÉ special")
    for page, expected in ((1, 2), (2, 2), (3, 0)):
        response = await client.get(f"/api/products?keyword=la&sort=price_asc&size=2&page={page}")
        assert response.status_code == 200, response.text
        assert len(response.json()) == expected
        assert response.headers["X-Total-Count"] == "4"
    # Case-insensitive beyond ASCII: "éclair" finds "Éclair", "été" finds "ÉTÉ".
    assert await names(client, "?keyword=%C3%A9clair") == ["Éclair Box"]
    assert await names(client, "?keyword=%C3%A9t%C3%A9") == ["Éclair Box"]


async def test_sorts(client, catalog):
    assert await names(client, "?sort=price_asc") == [
        "Banana Milk", "Cherry Cola", "Apple Juice", "녹차 라떼", "Desk Lamp", "Egg Chair"]
    assert (await names(client, "?sort=price_desc"))[:2] == ["Egg Chair", "Desk Lamp"]
    by_name = await names(client, "?sort=name")
    assert by_name[:3] == ["Apple Juice", "Banana Milk", "Cherry Cola"]
    assert set(await names(client, "?sort=popular")) == set(catalog)


async def test_pages_and_boundaries(client, catalog):
    all_names = await names(client, "?sort=price_asc")
    assert await names(client, "?sort=price_asc&page=1&size=4") == all_names[:4]
    last = await client.get("/api/products?sort=price_asc&page=2&size=4")
    assert [p["name"] for p in last.json()] == all_names[4:]
    assert last.headers["X-Total-Count"] == "6"
    beyond = await client.get("/api/products?page=3&size=4")
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "6"
    assert len(await names(client, "?size=100")) == 6


async def test_crossed_price_bounds_are_an_empty_range_not_an_error(client, catalog):
    crossed = await client.get("/api/products?minPrice=5000&maxPrice=100")
    assert crossed.status_code == 200
    assert crossed.json() == [] and crossed.headers["X-Total-Count"] == "0"


@BEFORE_THE_DATABASE
@pytest.mark.parametrize("query", [
    "?page=0", "?size=0", "?size=101", "?page=abc", "?sort=cheapest", "?minPrice=-1",
    "?maxPrice=100000001", "?inStock=maybe", "?keyword=",
    f"?keyword={'k' * 101}", "?minPrice=1.5", f"?page={2**70}",
    # An integer in a query is digits alone (lax parsing would take these).
    "?minPrice=0.5", "?page=+2", "?size=%205", "?page=1_0",
])
async def test_invalid_parameters_are_400(client, catalog, query):
    assert_error(await client.get(f"/api/products{query}"), 400, "INVALID_REQUEST")


async def test_unknown_product_is_404(client):
    assert_error(await client.get("/api/products/99999999"), 404, "PRODUCT_NOT_FOUND")
    assert_error(await client.get(f"/api/products/{2**64}"), 400, "INVALID_REQUEST")


async def test_cached_listing_never_shows_a_stale_price_stock_or_flag(shop, client, catalog):
    admin = await make_admin(shop)
    juice = catalog["Apple Juice"]
    await names(client, "?inStock=true")  # fill the cache
    await client.patch(f"/api/admin/products/{juice}", headers=admin.headers,
                       json={"price": 3_100})
    listed = {p["id"]: p for p in (await client.get("/api/products?inStock=true")).json()}
    assert listed[juice]["price"] == 3_100
    await client.post(f"/api/admin/products/{juice}/stock", headers=admin.headers,
                      json={"delta": -10})
    assert "Apple Juice" not in await names(client, "?inStock=true")
    await client.patch(f"/api/admin/products/{catalog['Egg Chair']}", headers=admin.headers,
                       json={"active": False})
    assert "Egg Chair" not in await names(client, "?inStock=true")
    new = await make_product(shop, name="Fig Jam", stock=3, category="home")
    # made through the service directly: the generation is bumped the same way
    assert (await client.get("/api/products?inStock=true")).json()[0]["id"] == new


class TestAcrossProcesses:
    """Two apps over one database (and one Redis, when set), as two server processes are:
    a change made through one is seen at once by a listing cached in the other."""

    @pytest.fixture(params=["embedded", "redis"])
    def settings_overrides(self, request):
        if request.param == "redis":
            from tests.backends import REDIS_URL, require

            return {"redis_url": require("redis", REDIS_URL)}
        return {}

    async def test_listing_cached_in_one_process_sees_writes_from_another(self, shop, client):
        admin = await make_admin(shop)
        product_id = await make_product(shop, price=500, stock=4, name="Shared")
        other = create_app(shop.settings)
        async with other.router.lifespan_context(other):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other),
                                         base_url="http://other.test") as second:
                assert (await second.get("/api/products?inStock=true")).json()[0]["price"] == 500
                await client.patch(f"/api/admin/products/{product_id}", headers=admin.headers,
                                   json={"price": 700})
                await client.post(f"/api/admin/products/{product_id}/stock",
                                  headers=admin.headers, json={"delta": -4})
                seen = (await second.get("/api/products?inStock=false")).json()
                assert [(p["id"], p["price"], p["stock"]) for p in seen] == [
                    (product_id, 700, 0)]
                assert (await second.get("/api/products?inStock=true")).json() == []

    async def test_a_page_held_by_one_process_shows_orders_and_cancellations_at_once(
            self, shop, client):
        """Each sale and each cancellation moves a listed product's stock (and, sorted by
        `popular`, the order): the same page asked again in the other process shows it."""
        user = await make_user(shop, balance=100_000)
        await make_product(shop, price=1_000, stock=5, name="First")
        second_product = await make_product(shop, price=2_000, stock=5, name="Second")
        other = create_app(shop.settings)
        async with other.router.lifespan_context(other):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other),
                                         base_url="http://other.test") as second:

                async def listed(query: str) -> list[tuple[str, int]]:
                    response = await second.get(f"/api/products{query}")
                    assert response.status_code == 200, response.text
                    return [(p["name"], p["stock"]) for p in response.json()]

                for query in ("?sort=price_asc", "?sort=popular&inStock=true"):
                    await listed(query)
                    await listed(query)  # a page now held under the current generations
                placed = await client.post("/api/orders", headers=user.headers, json={
                    "userId": user.id, "items": [{"productId": second_product,
                                                  "quantity": 2}]})
                assert placed.status_code == 201, placed.text
                assert await listed("?sort=price_asc") == [("First", 5), ("Second", 3)]
                assert await listed("?sort=popular&inStock=true") == [("Second", 3),
                                                                        ("First", 5)]
                cancelled = await client.post(
                    f"/api/orders/{placed.json()['orderId']}/cancel", headers=user.headers)
                assert cancelled.status_code == 200, cancelled.text
                assert await listed("?sort=price_asc") == [("First", 5), ("Second", 5)]
                assert [stock for _, stock in await listed("?sort=popular&inStock=true")
                        ] == [5, 5]

    async def test_a_repeated_page_is_answered_without_the_database_with_redis(
            self, shop, client, catalog):
        from sqlalchemy import event

        statements: list[str] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        first = (await client.get("/api/products?sort=price_asc&size=3")).json()
        engines = list(filter(None, [shop.db.engine.sync_engine, shop.db.inline_reader]))
        for engine in engines:
            event.listen(engine, "before_cursor_execute", record)
        try:
            again = await client.get("/api/products?sort=price_asc&size=3")
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", record)
        assert again.status_code == 200 and again.json() == first
        assert again.headers["X-Total-Count"] == "6"
        if shop.settings.redis_url:
            assert statements == []
        else:  # the ids are cached, the rows are read live
            assert statements and not any("LIKE" in s or "count(" in s.lower()
                                          for s in statements)
