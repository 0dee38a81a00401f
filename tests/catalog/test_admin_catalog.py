from __future__ import annotations

import pytest

from ecommerce.audit import audit_database
from tests.backends import BEFORE_THE_DATABASE
from tests.factories import assert_error, make_admin, make_product, make_user


async def test_admin_creates_category_and_product(shop, client):
    admin = await make_admin(shop)
    category = await client.post("/api/admin/categories", headers=admin.headers,
                                 json={"slug": "tea", "name": "차 Tea"})
    assert category.status_code == 201
    assert category.json() == {"id": category.json()["id"], "slug": "tea", "name": "차 Tea"}
    product = await client.post("/api/admin/products", headers=admin.headers, json={
        "name": "녹차 Green Tea", "description": "Jeju", "price": 12_000, "stock": 30,
        "category": "tea"})
    assert product.status_code == 201
    body = product.json()
    assert {k: body[k] for k in ("name", "price", "stock", "category", "active",
                                 "soldQuantity")} == {
        "name": "녹차 Green Tea", "price": 12_000, "stock": 30, "category": "tea",
        "active": True, "soldQuantity": 0}
    public = await client.get(f"/api/products/{body['id']}")
    assert public.json()["stock"] == 30 and "active" not in public.json()
    categories = await client.get("/api/categories")
    assert categories.json() == [{"id": category.json()["id"], "slug": "tea",
                                  "name": "차 Tea", "productCount": 1}]


async def test_duplicate_category_is_409(shop, client):
    admin = await make_admin(shop)
    await client.post("/api/admin/categories", headers=admin.headers,
                      json={"slug": "dup", "name": "A"})
    assert_error(await client.post("/api/admin/categories", headers=admin.headers,
                                   json={"slug": "dup", "name": "B"}), 409, "CATEGORY_EXISTS")


async def test_product_in_unknown_category_is_404(shop, client):
    admin = await make_admin(shop)
    assert_error(await client.post("/api/admin/products", headers=admin.headers, json={
        "name": "x", "price": 1, "stock": 1, "category": "nowhere"}), 404, "CATEGORY_NOT_FOUND")


@BEFORE_THE_DATABASE
@pytest.mark.parametrize("body, field", [
    ({"price": 0}, "price"), ({"price": 100_000_001}, "price"), ({"price": 99.5}, "price"),
    ({"stock": -1}, "stock"), ({"stock": "5"}, "stock"), ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"), ({"category": "Bad Slug"}, "category"),
    ({"category": None}, "category"),
])
async def test_invalid_product_is_400(shop, client, body, field):
    admin = await make_admin(shop)
    valid = {"name": "ok", "price": 100, "stock": 1, "category": "general"}
    error = assert_error(await client.post("/api/admin/products", headers=admin.headers,
                                           json={**valid, **body}), 400, "INVALID_REQUEST")
    assert field in error["message"]


async def test_catalog_admin_routes_need_an_admin(shop, client):
    customer = await make_user(shop)
    product_id = await make_product(shop)
    calls = [("POST", "/api/admin/categories", {"slug": "x", "name": "x"}),
             ("POST", "/api/admin/products",
              {"name": "x", "price": 1, "stock": 1, "category": "general"}),
             ("PATCH", f"/api/admin/products/{product_id}", {"price": 5}),
             ("POST", f"/api/admin/products/{product_id}/stock", {"delta": 5}),
             ("GET", "/api/admin/products", None)]
    for method, path, body in calls:
        assert_error(await client.request(method, path, json=body), 401, "UNAUTHORIZED")
        assert_error(await client.request(method, path, json=body, headers=customer.headers),
                     403, "FORBIDDEN")


async def test_patch_changes_fields_and_deactivation_hides_the_product(shop, client):
    admin = await make_admin(shop)
    product_id = await make_product(shop, price=1_000, name="Old name")
    await make_product(shop, category="other")
    patched = await client.patch(f"/api/admin/products/{product_id}", headers=admin.headers,
                                 json={"name": "New name", "price": 2_000, "category": "other"})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["price"], patched.json()["category"]) == (
        "New name", 2_000, "other")
    assert patched.json()["updatedAt"] >= patched.json()["createdAt"]
    assert (await client.get("/api/products?keyword=new")).json()[0]["id"] == product_id
    hidden = await client.patch(f"/api/admin/products/{product_id}", headers=admin.headers,
                                json={"active": False})
    assert hidden.json()["active"] is False
    assert_error(await client.get(f"/api/products/{product_id}"), 404, "PRODUCT_NOT_FOUND")
    assert product_id not in [p["id"] for p in (await client.get("/api/products")).json()]
    assert (await client.get(f"/api/admin/products/{product_id}",
                             headers=admin.headers)).status_code == 200
    counts = {c["slug"]: c["productCount"] for c in (await client.get("/api/categories")).json()}
    assert counts["other"] == 1
    await client.patch(f"/api/admin/products/{product_id}", headers=admin.headers,
                       json={"active": True})
    assert (await client.get(f"/api/products/{product_id}")).status_code == 200


@pytest.mark.parametrize("body", [{"price": None}, {"active": "yes"}, {"price": 0},
                                  {"category": "missing-cat"}])
async def test_bad_patch_is_refused_and_changes_nothing(shop, client, body):
    admin = await make_admin(shop)
    product_id = await make_product(shop, price=1_000)
    response = await client.patch(f"/api/admin/products/{product_id}", headers=admin.headers,
                                  json=body)
    assert response.status_code in (400, 404)
    assert (await client.get(f"/api/products/{product_id}")).json()["price"] == 1_000


async def test_patch_unknown_product_is_404(shop, client):
    admin = await make_admin(shop)
    assert_error(await client.patch("/api/admin/products/999999", headers=admin.headers,
                                    json={"price": 5}), 404, "PRODUCT_NOT_FOUND")


async def test_restock_and_write_off_leave_movements(shop, client):
    admin = await make_admin(shop)
    product_id = await make_product(shop, stock=10)
    restocked = await client.post(f"/api/admin/products/{product_id}/stock",
                                  headers=admin.headers, json={"delta": 15})
    assert restocked.json()["stock"] == 25
    written_off = await client.post(f"/api/admin/products/{product_id}/stock",
                                    headers=admin.headers, json={"delta": -25})
    assert written_off.json()["stock"] == 0
    below = await client.post(f"/api/admin/products/{product_id}/stock",
                              headers=admin.headers, json={"delta": -1})
    assert_error(below, 409, "OUT_OF_STOCK")
    assert (await client.get(f"/api/products/{product_id}")).json()["stock"] == 0
    for delta in (0, "3", 1.5, 10**12):
        assert_error(await client.post(f"/api/admin/products/{product_id}/stock",
                                       headers=admin.headers, json={"delta": delta}),
                     400, "INVALID_REQUEST")
    assert_error(await client.post("/api/admin/products/424242/stock", headers=admin.headers,
                                   json={"delta": 1}), 404, "PRODUCT_NOT_FOUND")
    assert not any((await audit_database(shop.db)).values())


async def test_a_restock_past_the_stock_cap_is_400_and_changes_nothing(shop, client):
    admin = await make_admin(shop)
    product_id = await make_product(shop, stock=100_000)
    over = await client.post(f"/api/admin/products/{product_id}/stock",
                             headers=admin.headers, json={"delta": 1_000_000_000})
    assert_error(over, 400, "STOCK_LIMIT_EXCEEDED")
    assert (await client.get(f"/api/products/{product_id}")).json()["stock"] == 100_000
    to_the_cap = await client.post(f"/api/admin/products/{product_id}/stock",
                                   headers=admin.headers, json={"delta": 999_900_000})
    assert to_the_cap.json()["stock"] == 1_000_000_000
    assert not any((await audit_database(shop.db)).values())
