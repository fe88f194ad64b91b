"""Locust user for the HTTP benchmark (used when wrk is not installed): POST LOCUST_BODY to
/orders, back to back, or at LOCUST_USER_RATE requests/s per user when that is set, with the
Authorization header LOCUST_AUTHORIZATION when that is set (e.g. "Bearer <JWT>").
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, constant_throughput, task

BODY = os.environ.get("LOCUST_BODY", "{}")
RATE = float(os.environ.get("LOCUST_USER_RATE", "0"))
AUTHORIZATION = os.environ.get("LOCUST_AUTHORIZATION", "")
HEADERS = {"Content-Type": "application/json"}
if AUTHORIZATION:
    HEADERS["Authorization"] = AUTHORIZATION


class Poster(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)

    @task
    def post_order(self) -> None:
        self.client.post("/orders", data=BODY, headers=HEADERS, name="POST /orders")
