"""The `make bench` scenarios for Locust, for people who prefer it (not installed by default):

    .venv/bin/pip install locust
    BENCH_TOKENS=tokens.json .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000

BENCH_TOKENS is a JSON object {userId: accessToken} for customers of the target shop (for
example from `ecommerce seed --demo` plus logins); without it only the public scenarios run.
Pick scenarios with Locust's tags: `--tags catalog`, `--tags orders`, ..."""

from __future__ import annotations

import json
import os
import random

from locust import FastHttpUser, between, tag, task

TOKENS: dict[str, str] = {}
if os.environ.get("BENCH_TOKENS"):
    with open(os.environ["BENCH_TOKENS"]) as handle:
        TOKENS = json.load(handle)
PRODUCT_IDS = list(range(1, int(os.environ.get("BENCH_PRODUCTS", "50")) + 1))


class Shopper(FastHttpUser):
    wait_time = between(0, 0.01)

    def on_start(self) -> None:
        self.user_id, self.token = (random.choice(list(TOKENS.items())) if TOKENS
                                    else (None, None))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @tag("baseline")
    @task
    def baseline(self) -> None:
        self.client.get("/healthz")

    @tag("catalog")
    @task(4)
    def product_list(self) -> None:
        sort = random.choice(["newest", "price_asc", "price_desc", "name"])
        self.client.get(f"/api/products?page={random.randint(1, 3)}&size=20&sort={sort}",
                        name="/api/products")

    @tag("catalog")
    @task(4)
    def product_detail(self) -> None:
        self.client.get(f"/api/products/{random.choice(PRODUCT_IDS)}",
                        name="/api/products/{id}")

    @tag("catalog")
    @task(2)
    def top_sellers(self) -> None:
        self.client.get("/api/products/top")

    @tag("balance")
    @task(2)
    def balance_read(self) -> None:
        if self.token:
            self.client.get(f"/api/balance/{self.user_id}", headers=self._auth(),
                            name="/api/balance/{userId}")

    @tag("balance")
    @task
    def recharge(self) -> None:
        if self.token:
            self.client.post("/api/balance/recharge", headers=self._auth(),
                             json={"userId": int(self.user_id), "amount": 1})

    @tag("coupons")
    @task
    def coupon_claim(self) -> None:
        if self.token:
            with self.client.post("/api/coupons/claim", headers=self._auth(), catch_response=True,
                                  json={"userId": int(self.user_id),
                                        "couponCode": os.environ.get("BENCH_COUPON", "FLASH")}
                                  ) as response:
                if response.status_code in (200, 409):
                    response.success()

    @tag("orders")
    @task(2)
    def order_many_products(self) -> None:
        if self.token:
            items = [{"productId": p, "quantity": 1}
                     for p in random.sample(PRODUCT_IDS, random.randint(1, 3))]
            with self.client.post("/api/orders", headers=self._auth(), catch_response=True,
                                  json={"userId": int(self.user_id), "items": items}) as response:
                if response.status_code in (201, 402, 409):
                    response.success()

    @tag("orders")
    @task
    def order_hot_product(self) -> None:
        if self.token:
            with self.client.post("/api/orders", headers=self._auth(), catch_response=True,
                                  json={"userId": int(self.user_id),
                                        "items": [{"productId": PRODUCT_IDS[0], "quantity": 1}]}
                                  ) as response:
                if response.status_code in (201, 402, 409):
                    response.success()
