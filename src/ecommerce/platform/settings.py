"""One Settings object, read from the environment (and `.env`)."""

from __future__ import annotations

import re
import secrets
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")


def parse_rate(value: str) -> tuple[int, int] | None:
    """`"10/minute"` -> (10, 60); `"0"` -> None (no limit)."""
    if value.strip() == "0":
        return None
    match = _RATE.match(value)
    if not match:
        raise ValueError(f"rate limit must look like N/second, N/minute or N/hour, got {value!r}")
    count = int(match.group(1))
    if count == 0:
        return None
    return count, {"second": 1, "minute": 60, "hour": 3600}[match.group(2)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{VAR_DIR}/ecommerce.db"
    redis_url: str | None = None
    # Every Redis key starts with this, so several shops (or test runs) can share one Redis.
    redis_prefix: str = "ecommerce"
    jwt_secret: str | None = None
    jwt_ttl_seconds: int = 3600
    admin_username: str | None = None
    admin_password: str | None = None
    data_platform_url: str | None = None
    data_platform_secret: str | None = None
    shop_timezone: str = "Asia/Seoul"
    rate_limit_login: str = "10/minute"
    rate_limit_claim: str = "5/second"
    # Argon2 cost; tests lower it so that thousands of accounts can be made quickly.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    db_pool_size: int = 20
    log_level: str = "INFO"
    run_relay: bool = True
    relay_max_attempts: int = 10
    relay_backoff_seconds: float = 1.0
    relay_lease_seconds: float = 30.0
    event_stream: str = "events.orders"
    access_log: bool = True
    # How long a computed top-sellers list is reused; orders show up within this (SPEC: 1 s).
    top_sellers_cache_seconds: float = 0.5

    @field_validator("rate_limit_login", "rate_limit_claim")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("shop_timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("redis_url", "data_platform_url", "admin_username", "admin_password")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

    def signing_key(self) -> str:
        """The JWT key: JWT_SECRET, else one generated once and kept under ./var/."""
        if self.jwt_secret:
            return self.jwt_secret
        path = VAR_DIR / "jwt_secret"
        if not path.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            candidate = secrets.token_urlsafe(48)
            try:
                with path.open("x") as handle:  # only the first process writes it
                    handle.write(candidate)
                path.chmod(0o600)
            except FileExistsError:
                pass
        self.jwt_secret = path.read_text().strip()
        return self.jwt_secret
