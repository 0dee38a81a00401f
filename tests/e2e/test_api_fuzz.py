"""Schemathesis against the OpenAPI document, on a real server per database, as each role:
no 5xx, and every answer (status, content type, body, headers) is the one documented."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ecommerce.app import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import live_server

# The document the app serves at /openapi.json (building the app connects to nothing).
schema = schemathesis.openapi.from_dict(create_app(make_settings("sqlite://")).openapi())
# Valid requests and invalid ones: both must get a documented answer.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
ROLES = ["anonymous", "customer", "admin"]


@pytest.fixture(scope="module")
async def fuzz_target(database_url):
    """A server on this database with a little of everything in it, and a token per role."""
    from tests.conftest import wipe

    await wipe(database_url)
    async with live_server(database_url, workers=1, ADMIN_USERNAME="fuzzadmin",
                           ADMIN_PASSWORD="fuzz-admin-password",
                           RATE_LIMIT_CLAIM="0") as server, \
            httpx.AsyncClient(base_url=server.url) as client:
        tokens = {"anonymous": None}
        for role, (name, password) in {"admin": ("fuzzadmin", "fuzz-admin-password"),
                                       "customer": ("fuzzcustomer", "fuzz-password")}.items():
            if role == "customer":
                await client.post("/api/auth/signup",
                                  json={"username": name, "password": password})
            login = await client.post("/api/auth/login",
                                      json={"username": name, "password": password})
            tokens[role] = login.json()["accessToken"]
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        await client.post("/api/admin/categories", json={"slug": "general", "name": "General"},
                          headers=admin)
        for i in range(3):
            await client.post("/api/admin/products", headers=admin, json={
                "name": f"Fuzz product {i}", "description": "", "price": 1_000 + i,
                "stock": 50, "category": "general"})
        await client.post("/api/admin/coupons", headers=admin, json={
            "code": "FUZZ", "name": "Fuzz", "discountType": "FIXED", "discountValue": 500,
            "totalQuantity": 1_000, "validDays": 7})
        yield server.url, tokens


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented_and_never_5xx(case, role, fuzz_target):
    url, tokens = fuzz_target
    headers = {"Authorization": f"Bearer {tokens[role]}"} if tokens[role] else None
    if headers is None and case.headers:
        case.headers.pop("Authorization", None)
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)
