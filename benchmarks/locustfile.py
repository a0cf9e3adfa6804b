"""The original load profile against churn-ab: 10× predict, 2× health, 1× stats,
1× models per user, each user a customer with a sticky id.

Users are realistic customers drawn from ``churn_features.schema`` (see
``benchmarks/customers.py``): about 40% high churn risk, the rest low. A user
keeps its id for the whole run, so it must keep its variant: a changed
``assigned_variant`` within one experiment epoch is reported as a failure.

Pacing: each user runs ``CHURN_LOCUST_RATE`` tasks per second (default 1), so
``users × rate`` is the offered load. Run headless with ``make loadtest`` /
``make soak`` (``benchmarks/soak.py``) or
``locust -f benchmarks/locustfile.py --headless -H http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import itertools
import os
import random
import sys
from pathlib import Path
from typing import Any

from locust import HttpUser, constant_throughput, task

# `locust -f benchmarks/locustfile.py` puts only benchmarks/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.customers import HIGH_RISK_SHARE, make_customer

RATE = float(os.environ.get("CHURN_LOCUST_RATE", "1"))
SEED = int(os.environ.get("CHURN_LOCUST_SEED", "1"))
_user_numbers = itertools.count()


class ChurnCustomer(HttpUser):
    wait_time = constant_throughput(RATE)

    def on_start(self) -> None:
        number = next(_user_numbers)
        rng = random.Random(SEED * 1_000_003 + number)
        self.customer: dict[str, Any] = make_customer(
            rng,
            high_risk=rng.random() < HIGH_RISK_SHARE,
            customer_id=f"locust-{SEED}-{number:06d}",
        )
        self.assigned: tuple[int, str] | None = None

    @task(10)
    def predict(self) -> None:
        with self.client.post(
            "/predict", json=self.customer, name="/predict", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            problem = self._check_prediction(body)
            if problem:
                response.failure(problem)

    def _check_prediction(self, body: dict[str, Any]) -> str | None:
        probability = body.get("churn_probability")
        if body.get("model_version") not in ("v1", "v2"):
            return f"unknown model_version {body.get('model_version')!r}"
        if not isinstance(probability, float) or not 0.0 <= probability <= 1.0:
            return f"churn_probability out of range: {probability!r}"
        if body.get("assignment_unit") != "customer":
            return "a request with customerID was not assigned by customer"
        current = (int(body["epoch"]), str(body["assigned_variant"]))
        previous = self.assigned
        if previous is not None and previous[0] == current[0] and previous != current:
            return f"sticky assignment broke: {previous[1]} then {current[1]}"
        self.assigned = current
        return None

    @task(2)
    def health(self) -> None:
        self.client.get("/health", name="/health")

    @task(1)
    def stats(self) -> None:
        self.client.get("/ab-test/stats", name="/ab-test/stats")

    @task(1)
    def models(self) -> None:
        self.client.get("/models", name="/models")
