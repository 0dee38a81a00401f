"""One Settings object, read from the environment (and `.env`)."""

from __future__ import annotations

import ipaddress
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")
MIN_SECRET_BYTES = 32
MIN_SECRET_DISTINCT = 16
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
    # Failed logins per username from any address (a spread-out guessing attack).
    rate_limit_login_account: str = "30/hour"
    # Sign-ups per client address (accounts are free: without a bound one address makes
    # hundreds a minute, each able to hold stock with unpaid card orders).
    rate_limit_signup: str = "20/hour"
    # How often each process reads which users' token versions rose (a password or role
    # change revokes earlier tokens everywhere within this; at once where it was made).
    token_check_seconds: float = Field(default=1.0, gt=0, le=60)
    # Addresses (comma-separated IPs or networks, "*" for any) whose X-Forwarded-For is
    # believed; unset: none is, and the peer address is the client's.
    trusted_proxies: str | None = None
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(default=65536, ge=1024)
    # Password hashes (argon2) that run at once in a process, and how many may wait for one;
    # past that, login and sign-up answer 503 with Retry-After at once.
    password_checks: int = Field(default=1, ge=1)
    password_checks_waiting: int = Field(default=8, ge=0)
    # The supervisor replaces a worker that has not answered its health check for this
    # long; a worker that is only busy (CPU-starved) must not be killed for it.
    worker_healthcheck_seconds: float = Field(default=60.0, gt=0)
    # How long an idle client connection is kept open. Longer than any client's (or load
    # balancer's) own idle timeout, or a request sent on a connection the server is just
    # closing is lost (a reset, not an HTTP answer).
    keep_alive_seconds: int = Field(default=5, ge=1)
    # Argon2id's cost: OWASP's minimum (19 MiB, 2 passes; one check about 20 ms of one core
    # here, decision 78). Tests lower it so that thousands of accounts can be made quickly.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19456, ge=8)
    db_pool_size: int = Field(default=20, ge=1)
    # Connections a process may open past DB_POOL_SIZE under a burst (closed when returned).
    db_pool_overflow: int = Field(default=10, ge=0)
    log_level: str = "INFO"
    # The consumers (and, with Redis, the stream publisher) run beside the server: `serve`
    # starts an `ecommerce consume` process; an app built otherwise runs them in its own
    # event loop. False: only `ecommerce consume` processes started apart do.
    run_consumers: bool = True
    # `serve` runs them in a process of their own at this `nice` (0..19): on a busy machine
    # requests come first.
    consumer_nice: int = Field(default=19, ge=0, le=19)
    # Set by `serve` for its workers: the consumers run in the process it started beside
    # them, so the workers' own event loops do not run them too.
    consumers_apart: bool = False
    consumer_batch: int = Field(default=100, ge=1, le=1000)
    # After a pass that took some events but not a full batch, a consumer (and the
    # publisher) waits this long before the next: under a steady stream of orders the
    # events of that time go as one batch (one claim, one settle) instead of a pass for
    # every few (decision 88). 0: every pass at once.
    consumer_linger_seconds: float = Field(default=0.1, ge=0, le=5)
    consumer_max_attempts: int = Field(default=10, ge=1)
    consumer_backoff_seconds: float = Field(default=1.0, gt=0)
    # A worker that took an event and died leaves it to others after this long (also the
    # Redis stream's idle time before XAUTOCLAIM).
    consumer_lease_seconds: float = Field(default=30.0, gt=0)
    # An event that failed every quick attempt is dead, but tried again this often, on its
    # own, until it is this many hours old (an outage of up to that long needs no admin).
    consumer_slow_retry_seconds: float = Field(default=1800.0, gt=0)
    consumer_slow_retry_hours: float = Field(default=48.0, ge=0)
    # The outbox sweep (what no broker said: late commits, a flushed Redis) runs this often
    # and takes events at least this old; the cursor passes events older than settle.
    consumer_sweep_seconds: float = Field(default=10.0, gt=0)
    consumer_sweep_grace_seconds: float = Field(default=2.0, ge=0)
    consumer_settle_seconds: float = Field(default=60.0, ge=0)
    # Order e-mails (the `email` consumer; unset: it does not run). smtp://host:port,
    # smtp+starttls://user:pass@host:587 or smtps://user:pass@host:465.
    smtp_url: str | None = None
    smtp_from: str = "shop@localhost"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # An event older than this gets no e-mail (a consumer switched on late does not mail
    # the past); it is settled as "too old".
    email_max_age_hours: float = Field(default=24.0, gt=0)
    shop_name: str = "온라인 상점"
    # Where customers reach the storefront (links in e-mails); unset: mails carry no link.
    shop_url: str | None = "http://127.0.0.1:8000"
    # Where the outbox's events are published for the consumers: `kafka` (a topic, one
    # consumer group per consumer), `redis` (a Redis stream) or `outbox` (no broker: the
    # consumers read the outbox). Unset: redis with REDIS_URL, else outbox.
    event_broker: Literal["kafka", "redis", "outbox"] | None = None
    # The publisher's lease on a batch of outbox rows.
    relay_lease_seconds: float = 30.0
    event_stream: str = "events.orders"
    # Kafka (EVENT_BROKER=kafka): host:port[,host:port...]; the topic (unset:
    # <REDIS_PREFIX>.orders), made with these partitions and replicas if it is missing
    # (unset replicas: 3, or fewer when the cluster has fewer brokers).
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str | None = None
    kafka_partitions: int = Field(default=6, ge=1, le=10_000)
    kafka_replication_factor: int | None = Field(default=None, ge=1, le=32)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    # A CA bundle the brokers' certificates are checked against (SSL, SASL_SSL); unset: the
    # system's.
    kafka_ssl_cafile: str | None = None
    # How long a batch may wait for the brokers' acknowledgement before it is sent again.
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    # A consumer process silent this long leaves its group (its partitions go to the
    # others). A group's coordinator also waits about half of it for members to join.
    # Kafka refuses less than its group.min.session.timeout.ms (6 s by default).
    kafka_session_timeout_seconds: float = Field(default=10.0, ge=1, le=300)
    access_log: bool = True
    # How long a computed top-sellers list is reused; orders show up within this (SPEC: 1 s).
    top_sellers_cache_seconds: float = 0.5
    # The card payment gateway (Toss Payments v1 API shape; `ecommerce dev-pg` locally).
    # Unset: card payment is off.
    payment_gateway_url: str | None = None
    payment_secret_key: str | None = None
    payment_client_key: str | None = None
    # Where the storefront sends a customer to pay by card; unset: the gateway's /checkout
    # (dev-pg's page). A real gateway's widget page goes here.
    payment_checkout_url: str | None = None
    # A gateway call that takes longer leaves the payment's outcome unknown (settled later
    # from the gateway's lookup, never charged twice).
    payment_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long a card order holds its stock, coupon and balance part before it expires.
    payment_hold_seconds: int = Field(default=600, ge=1)
    # How often each `serve` process runs the payment reconcile job (expiries within a
    # minute of their time: SPEC invariant 8); `run_payment_jobs` false: only the CLI does.
    # A confirm whose call began this long plus the timeout ago has surely ended at the
    # gateway: only then does the job read "no payment there" as declined.
    payment_settle_grace_seconds: float = Field(default=5.0, ge=0)
    # A payment that failed because a lookup found no approval is looked up again this
    # often, for this long (a gateway that approved it later is then refunded).
    payment_recheck_seconds: float = Field(default=600.0, gt=0)
    payment_recheck_hours: float = Field(default=24.0, ge=0)
    payment_reconcile_seconds: float = Field(default=10.0, gt=0, le=50)
    run_payment_jobs: bool = True
    # Unpaid card orders hold stock for free until they expire: at most this many per
    # customer, this many items each, and together this share of a product's units (the
    # rest stays for buyers who pay at once). Past them: 409.
    payment_pending_per_user: int = Field(default=3, ge=1, le=100)
    payment_pending_max_quantity: int = Field(default=100, ge=1, le=50_000)
    payment_pending_stock_percent: int = Field(default=50, ge=1, le=100)
    # Whether customers may credit their own balance without paying (POST
    # /api/balance/recharge). Unset: yes without a card gateway (the demo), no with one
    # (their top-up goes by card); true keeps it open beside a gateway.
    balance_direct_topup: bool | None = None

    @property
    def direct_topup(self) -> bool:
        if self.balance_direct_topup is not None:
            return self.balance_direct_topup
        return self.payment_gateway_url is None

    @property
    def checkout_url(self) -> str | None:
        if self.payment_checkout_url:
            return self.payment_checkout_url
        if self.payment_gateway_url:
            return self.payment_gateway_url.rstrip("/") + "/checkout"
        return None

    @field_validator("rate_limit_login", "rate_limit_claim", "rate_limit_login_account",
                     "rate_limit_signup")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("shop_timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        # HS256 with a short key is guessed offline from one token (then any token, an
        # admin's included, can be forged): refuse it rather than warn.
        generate = ("Generate one with: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'")
        if value and len(value.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (got "
                             f"{len(value.encode())}); a short key can be recovered from a "
                             f"single token. {generate}")
        if value and len(set(value.encode())) < MIN_SECRET_DISTINCT:
            raise ValueError(f"JWT_SECRET has {len(set(value.encode()))} distinct bytes: a "
                             f"key of repeated characters is guessed as easily as a short "
                             f"one (at least {MIN_SECRET_DISTINCT} needed). {generate}")
        return value or None

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        for item in value.split(","):
            item = item.strip()
            if item != "*":
                ipaddress.ip_network(item, strict=False)
        return value.strip()

    @field_validator("smtp_url")
    @classmethod
    def _valid_smtp_url(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parts = urlsplit(value.strip())
        try:
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
            valid = parts.scheme in ("smtp", "smtps", "smtp+starttls") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            raise ValueError("SMTP_URL must be smtp://host:port, smtp+starttls://user:pass@"
                             "host:587 or smtps://user:pass@host:465")
        return value.strip()

    @field_validator("redis_url", "data_platform_url", "admin_username", "admin_password",
                     "payment_gateway_url", "payment_secret_key", "payment_client_key",
                     "kafka_bootstrap_servers", "kafka_topic", "kafka_sasl_username",
                     "kafka_sasl_password", "kafka_ssl_cafile", "event_broker",
                     "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _broker_reachable(self) -> Settings:
        if self.event_broker == "kafka" and not self.kafka_bootstrap_servers:
            raise ValueError("EVENT_BROKER=kafka needs KAFKA_BOOTSTRAP_SERVERS (host:port)")
        if self.event_broker == "redis" and not self.redis_url:
            raise ValueError("EVENT_BROKER=redis needs REDIS_URL")
        if self.kafka_sasl_mechanism and not (self.kafka_sasl_username
                                              and self.kafka_sasl_password):
            raise ValueError("KAFKA_SASL_MECHANISM needs KAFKA_SASL_USERNAME and "
                             "KAFKA_SASL_PASSWORD")
        if self.kafka_security_protocol.startswith("SASL") and not self.kafka_sasl_mechanism:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             f"KAFKA_SASL_MECHANISM")
        return self

    @property
    def broker(self) -> str:
        """Where events are published: kafka, redis or outbox."""
        if self.event_broker:
            return self.event_broker
        return "redis" if self.redis_url else "outbox"

    @property
    def topic(self) -> str:
        """The Kafka topic order events are published to."""
        return self.kafka_topic or f"{self.redis_prefix}.orders"

    @property
    def stream_key(self) -> str:
        """The Redis stream order events are published to, under the key prefix."""
        return f"{self.redis_prefix}:{self.event_stream}"

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
