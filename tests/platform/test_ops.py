from __future__ import annotations

import httpx
import pytest

from ecommerce.app import create_app
from tests.conftest import make_settings
from tests.factories import assert_error


async def test_health_ready_metrics_docs(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    # Each check is bounded by 2 s: on this 2-core machine, with a storm test running in
    # the other test process, a first database connection once took longer (a 503, as a
    # load balancer's probe would see it once; HAProxy needs two in a row). Three tries.
    for _ in range(3):
        ready = await client.get("/readyz")
        if ready.status_code == 200:
            break
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}, ready.text
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert ('http_requests_total{handler="fastapi",method="GET",route="/readyz",status="200"}'
            in metrics.text)
    # The lean path labels what it answers, so one can tell which path served a request.
    assert (await client.get("/api/products")).status_code == 200
    metrics = await client.get("/metrics")
    assert ('http_requests_total{handler="lean",method="GET",route="/api/products",'
            'status="200"}' in metrics.text)
    # /livez answers as /healthz does, on the lean path (the benchmarks' two ceilings).
    assert (await client.get("/livez")).json() == {"status": "ok"}
    metrics = await client.get("/metrics")
    assert ('http_requests_total{handler="lean",method="GET",route="/livez",status="200"}'
            in metrics.text)
    docs = await client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI's files come from this server, not a CDN (it works offline).
    assert "cdn" not in docs.text.lower() and "/docs/assets/swagger-ui-bundle.js" in docs.text
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        served = await client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
    favicon = await client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/x-icon"
    spec = (await client.get("/openapi.json")).json()
    assert "/api/balance/recharge" in spec["paths"]
    recharge = spec["paths"]["/api/balance/recharge"]["post"]["responses"]
    assert {"200", "400", "401", "403", "404", "422"} <= set(recharge)


async def test_request_id_is_echoed_or_generated(client):
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32
    error = await client.get("/no/such/route", headers={"X-Request-ID": "err-1"})
    assert error.headers["X-Request-ID"] == "err-1"


async def test_unknown_route_and_wrong_method_use_the_error_format(client):
    assert_error(await client.get("/api/nothing-here"), 404, "NOT_FOUND")
    assert_error(await client.put("/api/balance/recharge", json={}), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/api/balance/recharge", "POST"),  # not a user id for GET /api/balance/{userId}
    ("GET", "/api/orders/quote", "POST"),
    ("GET", "/api/coupons/claim", "POST"),
    ("PUT", "/api/admin/coupons", "GET, POST"),  # two routes share the path
    ("DELETE", "/api/admin/products/1", "GET, PATCH"),
    ("POST", "/api/products", "GET"),  # a lean path's route
    ("HEAD", "/api/products/top", "GET"),
    ("PATCH", "/api/orders", "POST"),
])
async def test_405_names_every_method_of_the_path(client, method, path, allow):
    response = await client.request(method, path)
    if method == "HEAD":  # no body to read
        assert response.status_code == 405
    else:
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize("url", ["postgresql://nobody@127.0.0.1:1/none",
                                 "mysql://nobody@127.0.0.1:1/none"])
async def test_unreachable_database_is_503_not_500(url):
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://x") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unavailable")
            login = await client.post("/api/auth/login",
                                      json={"username": "someone", "password": "password-1"})
            assert_error(login, 503, "SERVICE_UNAVAILABLE")
            assert login.headers["Retry-After"] == "1"


async def test_unreachable_redis_makes_readyz_503(database_url):
    app = create_app(make_settings(database_url, redis_url="redis://127.0.0.1:1"))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://x") as client:
            ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "ok"


async def test_nul_characters_are_400_never_500(shop, client):
    """PostgreSQL cannot store NUL: bodies, query parameters and claims all answer 400."""
    from tests.factories import make_admin, make_user

    admin, user = await make_admin(shop), await make_user(shop)
    error = assert_error(await client.post("/api/admin/categories", headers=admin.headers,
                                           json={"slug": "nul", "name": "a\u0000b"}),
                         400, "INVALID_REQUEST")
    assert "name" in error["message"]
    assert (await client.get("/api/categories")).json() == []  # nothing was stored
    assert_error(await client.get("/api/products?keyword=a%00b"), 400, "INVALID_REQUEST")
    assert_error(await client.post("/api/coupons/claim", headers=user.headers,
                                   json={"userId": user.id, "couponCode": "A\u0000B"}),
                 400, "INVALID_REQUEST")



async def test_a_served_worker_freezes_what_its_start_loaded(tmp_path):
    """`factory` (each served worker) moves what the start loaded out of the collector's
    sight; an app made otherwise (tests, the CLI) leaves the collector as it was."""
    import gc

    url = f"sqlite+aiosqlite:///{tmp_path}/shop.db"
    gc.unfreeze()
    try:
        plain = create_app(make_settings(url))
        async with plain.router.lifespan_context(plain):
            assert gc.get_freeze_count() == 0
        served = create_app(make_settings(url), freeze_at_start=True)
        async with served.router.lifespan_context(served):
            assert gc.get_freeze_count() > 10_000  # the modules and the app, not a handful
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served),
                                         base_url="http://x") as client:
                assert (await client.get("/readyz")).status_code == 200
    finally:
        gc.unfreeze()
