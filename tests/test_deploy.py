"""deploy/: the environment file a deployment starts from (the HAProxy and PgBouncer files
are rendered and run by the cluster test, tests/cluster/run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ecommerce.platform.engines import behind_pgbouncer
from ecommerce.platform.settings import Settings

ENV_FILE = Path(__file__).resolve().parents[1] / "deploy" / "ecommerce.env.example"


@pytest.fixture(autouse=True)
def only_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of this run (CI sets DATABASE_URL...) would win over the file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_the_env_templates_placeholder_secret_stops_the_server():
    with pytest.raises(ValidationError, match="JWT_SECRET must be at least 32 bytes"):
        Settings(_env_file=ENV_FILE)


def test_the_env_template_reaches_postgresql_through_pgbouncer(monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "a-real-secret-0123456789-ABCDEFGHIJ-klmnop")
    settings = Settings(_env_file=ENV_FILE)
    assert behind_pgbouncer(settings.database_url)
    assert settings.keep_alive_seconds > 4  # above HAProxy's `timeout http-keep-alive 4s`
    assert settings.trusted_proxies and settings.admin_password is None
    assert settings.payment_gateway_url is None


def test_the_pgbouncer_flag_on_a_database_other_than_postgresql_is_refused_with_the_reason():
    from ecommerce.platform.engines import create_engine

    with pytest.raises(ValueError, match=r"\?pgbouncer= is for PostgreSQL URLs"):
        create_engine("mysql://root@127.0.0.1:3306/shop?pgbouncer=true")
    engine = create_engine("postgresql://postgres@127.0.0.1:5432/shop?pgbouncer=false")
    assert "pgbouncer" not in engine.url.query  # read and left out of the driver's options
