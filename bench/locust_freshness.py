"""Locust user for the freshness benchmark: place an order on the command API (the locust host),
then GET it from the query API (FRESHNESS_QUERY_URL) with ?min_version=1, which waits until the
projection has it. Each user runs FRESHNESS_USER_RATE iterations/s; every iteration's times
(time.monotonic, comparable across processes on Linux) go to FRESHNESS_OUT as JSON lines.
Both requests carry the Authorization header FRESHNESS_AUTHORIZATION (e.g. "Bearer <JWT>").
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task

QUERY_URL = os.environ.get("FRESHNESS_QUERY_URL", "http://127.0.0.1:8002")
RATE = float(os.environ.get("FRESHNESS_USER_RATE", "1"))
OUT = os.environ.get("FRESHNESS_OUT", "freshness.jsonl")
AUTHORIZATION = os.environ.get("FRESHNESS_AUTHORIZATION", "")
AUTH_HEADERS = {"Authorization": AUTHORIZATION} if AUTHORIZATION else {}
POST_HEADERS = {"Content-Type": "application/json", **AUTH_HEADERS}
SAMPLES: list[dict[str, Any]] = []
PRODUCTS = [f"p-{n:03d}" for n in range(200)]


def _body(rng: random.Random, order_id: str) -> str:
    lines = [
        {
            "product_id": rng.choice(PRODUCTS),
            "quantity": rng.randint(1, 5),
            "unit_price": f"{rng.randint(1, 200)}.{rng.randint(0, 99):02d}",
        }
        for _ in range(rng.randint(1, 3))
    ]
    return json.dumps(
        {"order_id": order_id, "customer_id": f"c-{rng.randint(0, 999):04d}", "lines": lines}
    )


class OrderPlacer(FastHttpUser):
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def place_then_read(self) -> None:
        order_id = f"f-{uuid.uuid4().hex[:20]}"
        sent = time.monotonic()
        with self.client.post(
            "/orders",
            data=_body(self.rng, order_id),
            headers=POST_HEADERS,
            name="POST /orders",
            catch_response=True,
        ) as response:
            acked = time.monotonic()
            if response.status_code != 201:
                response.failure(f"status {response.status_code}")
                SAMPLES.append({"order_id": order_id, "sent": sent, "status": response.status_code})
                return
            version = response.json()["version"]
        with self.client.get(
            f"{QUERY_URL}/orders/{order_id}?min_version={version}",
            headers=AUTH_HEADERS,
            name="GET /orders/{id}",
            catch_response=True,
        ) as read:
            visible = time.monotonic()
            up_to_date = read.headers.get("X-Projection-Up-To-Date") == "true"
            if read.status_code != 200 or not up_to_date:
                read.failure(f"status {read.status_code}, up to date: {up_to_date}")
        SAMPLES.append(
            {
                "order_id": order_id,
                "sent": sent,
                "acked": acked,
                "visible": visible,
                "status": 201,
                "read_status": read.status_code,
                "up_to_date": up_to_date,
            }
        )


@events.test_stop.add_listener
def _write_samples(**_: Any) -> None:
    with open(OUT, "w") as out:
        for sample in SAMPLES:
            out.write(json.dumps(sample) + "\n")
