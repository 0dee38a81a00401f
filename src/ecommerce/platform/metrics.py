"""Prometheus metrics. With several worker processes, each writes to a shared directory
(PROMETHEUS_MULTIPROC_DIR, set by `ecommerce serve`) and /metrics aggregates them."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# `handler` says which path answered: "lean" (platform/fastpath.py) or "fastapi".
REQUESTS = Counter("http_requests_total", "HTTP requests",
                   ["method", "route", "status", "handler"])
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "route", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DOMAIN = Counter("shop_events_total", "Business outcomes", ["event", "outcome"])
# Each consumer's settled events by status (handled, retry, dead), and its lag: the
# events it has not finished, as the latest sweep of any live process counted them.
CONSUMER_EVENTS = Counter("consumer_events_total", "Events a consumer settled",
                          ["consumer", "status"])
CONSUMER_OUTCOMES = Counter("consumer_outcomes_total", "What a consumer's effect was",
                            ["consumer", "outcome"])
CONSUMER_LAG = Gauge("consumer_lag", "Events a consumer has not finished", ["consumer"],
                     multiprocess_mode="livemax")


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
