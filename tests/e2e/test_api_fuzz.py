"""Schemathesis against the OpenAPI document, on a real server per database, as each role,
with every check: no 5xx, every answer (status, content type, body, headers) is the one
documented, schema-valid requests are accepted and schema-invalid ones refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import live_server

# `schemathesis run --checks all` (the CLI, with the repository's schemathesis.toml) against
# a real server per database, as each role: every phase (examples, coverage, fuzzing,
# stateful), valid and invalid requests. FUZZ_EXAMPLES raises the examples per operation.
ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "schemathesis"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
# A fixed seed by default, so a run is repeatable (CI); FUZZ_SEED= (empty) for a new one.
SEED = os.environ.get("FUZZ_SEED", "20261130")
# Anonymous on SQLite only: without a token every request but the public reads is refused
# before it reaches a database, and the public reads (the catalog, the top sellers, the
# coupons on offer) are the same requests the customer's and the admin's runs make on every
# database. Two fewer runs of about 40 s each on a busy machine, inside CI's 15 minutes.
ROLES = [pytest.param("anonymous", marks=pytest.mark.databases("sqlite")), "customer", "admin"]


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
def test_schemathesis_with_every_check_finds_nothing(role, fuzz_target):
    url, tokens = fuzz_target
    command = [str(CLI), "--config-file", str(ROOT / "schemathesis.toml"), "run",
               f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
               "--no-color", "--request-timeout", "30"]
    if SEED:
        command += ["--seed", SEED]
    if tokens[role]:
        command += ["-H", f"Authorization: Bearer {tokens[role]}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "failures" not in result.stdout.splitlines()[-1], result.stdout[-3000:]
