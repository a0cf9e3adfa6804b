"""Scale-out: two ``bentoml serve`` instances share one experiment in PostgreSQL.

Like two hosts behind a load balancer: each instance has its own port, working
directory and entry worker, and nothing in common but ``CHURN_AB_LEDGER_URL``.
Assignment must agree, statistics must count both, an admin change on one must
reach the other, and feedback may land on either.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import ADMIN_TOKEN, BentoServer, start_bento_server
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgres

# An admin change reaches the other instance at its next state poll
# (CHURN_AB_STATE_REFRESH_S, 1 s by default); the bound below only keeps a
# broken build from hanging, it is not a latency claim.
PROPAGATION_BOUND_S = 15.0


@dataclass
class Pair:
    a: BentoServer
    b: BentoServer
    ledger_url: str
    # The transitions as both instances left them on start-up, read before
    # any test runs: later tests add their own.
    startup_transitions: list[tuple[Any, ...]]

    def exposures_in_postgres(self, epoch: int) -> int:
        with psycopg.connect(self.ledger_url) as connection:
            row = connection.execute(
                "SELECT COUNT(*) FROM exposures WHERE epoch = %s", (epoch,)
            ).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def module_pair(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    postgres = PostgresServer().start()
    servers: list[BentoServer] = []
    try:
        url = postgres.create_database("churn_ab")
        env = {"CHURN_AB_LEDGER_URL": url}
        # Both start at once, like replicas of a rollout: the schema and the
        # experiment row must be created exactly once between them.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                pool.submit(
                    start_bento_server,
                    trained_home,
                    tmp_path_factory.mktemp(f"scale-out-{name}"),
                    env=env,
                    entry_workers=1,
                )
                for name in ("a", "b")
            ]
            for future in futures:
                try:
                    servers.append(future.result())
                except Exception:
                    for other in futures:
                        if other is not future and other.exception() is None:
                            servers.append(other.result())
                    raise
        with psycopg.connect(url) as connection:
            kinds = connection.execute("SELECT kind FROM transitions").fetchall()
        yield Pair(servers[0], servers[1], url, kinds)
    finally:
        leftovers = {server.url: server.stop() for server in servers}
        postgres_leftover = postgres.stop()
    assert not any(leftovers.values()), f"bentoml serve left processes: {leftovers}"
    assert not postgres_leftover, f"PostgreSQL left processes: {postgres_leftover}"
    assert not postgres.root.exists()


STARTING_WEIGHTS = {"v1": 0.5, "v2": 0.5}


@pytest.fixture
def pair(module_pair: Pair) -> Iterator[Pair]:
    """The module's pair, with the shared experiment put back to 50/50 after
    each test, in teardown, so a failed assert cannot leak a weight change.
    Only a changed experiment is reset: a reset opens a new epoch, and the
    tests read the traffic and labels of the current one."""
    yield module_pair
    models = httpx.get(f"{module_pair.a.url}/models", timeout=30).json()["models"]
    if {variant: models[variant]["weight"] for variant in models} == STARTING_WEIGHTS:
        return
    response = httpx.post(
        f"{module_pair.a.url}/ab-test/weights",
        json={"weights": STARTING_WEIGHTS, "reason": "teardown"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["effective_weights"] == STARTING_WEIGHTS


def predict(server: BentoServer, customer_id: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/predict",
        json={**EXAMPLE_CUSTOMER, "customerID": customer_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stats(server: BentoServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/ab-test/stats", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_neither_instance_uses_sqlite(pair: Pair) -> None:
    """The URL wins over the SQLite path both instances were also given, and
    the two created the experiment once between them."""
    for server in (pair.a, pair.b):
        assert not server.ledger_path.exists(), server.ledger_path
    assert pair.startup_transitions == [("created",)]


def test_a_customer_gets_the_same_variant_from_both(pair: Pair) -> None:
    customers = [f"sticky-{i}" for i in range(30)]
    from_a = [predict(pair.a, c)["model_version"] for c in customers]
    from_b = [predict(pair.b, c)["model_version"] for c in customers]
    assert from_a == from_b
    assert set(from_a) == {"v1", "v2"}  # 30 customers at 50/50 reach both


def test_stats_from_either_count_the_traffic_of_both(pair: Pair) -> None:
    before_a, before_b = stats(pair.a), stats(pair.b)
    assert before_a["epoch"] == before_b["epoch"]
    assert before_a["total_requests"] == before_b["total_requests"]
    jobs = [(pair.a, f"count-a-{i}") for i in range(40)] + [
        (pair.b, f"count-b-{i}") for i in range(25)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answered = list(pool.map(lambda job: predict(*job)["model_version"], jobs))

    for server, before in ((pair.a, before_a), (pair.b, before_b)):
        after = stats(server)
        assert after["total_requests"] - before["total_requests"] == len(jobs)
        for variant in ("v1", "v2"):
            delta = (
                after["variants"][variant]["requests"]
                - before["variants"][variant]["requests"]
            )
            assert delta == answered.count(variant), (server.url, variant)
    after_b = stats(pair.b)
    assert after_b["total_requests"] == pair.exposures_in_postgres(after_b["epoch"])


def test_feedback_to_b_for_a_request_answered_by_a(pair: Pair) -> None:
    answer = predict(pair.a, "feedback-customer")
    request_id = answer["request_id"]
    feedback = {"request_id": request_id, "churned": True}

    response = httpx.post(f"{pair.b.url}/feedback", json=feedback, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"request_id": request_id, "outcome": "accepted"}
    # A sees B's label: the same fact again is a duplicate, its opposite a 409.
    again = httpx.post(f"{pair.a.url}/feedback", json=feedback, timeout=30)
    assert again.json()["outcome"] == "duplicate"
    conflict = httpx.post(
        f"{pair.a.url}/feedback", json={**feedback, "churned": False}, timeout=30
    )
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["error"]["code"] == "conflicting_label"

    by_customer = httpx.post(
        f"{pair.b.url}/feedback",
        json={"customerID": "sticky-0", "churned": False},
        timeout=30,
    )
    assert by_customer.status_code == 200, by_customer.text
    labelled = {v: stats(pair.a)["variants"][v]["labelled"] for v in ("v1", "v2")}
    assert sum(labelled.values()) == 2


def test_a_weight_change_on_a_reaches_b(pair: Pair) -> None:
    epoch_before = stats(pair.b)["epoch"]
    response = httpx.post(
        f"{pair.a.url}/ab-test/weights",
        json={"weights": {"v1": 0.9, "v2": 0.1}},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text

    wanted = {"v1": 0.9, "v2": 0.1}
    deadline = time.monotonic() + PROPAGATION_BOUND_S
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        models = httpx.get(f"{pair.b.url}/models", timeout=30).json()["models"]
        seen = {variant: models[variant]["weight"] for variant in models}
        if seen == pytest.approx(wanted):
            break
        time.sleep(0.2)
    assert seen == pytest.approx(wanted), seen

    after_a, after_b = stats(pair.a), stats(pair.b)
    assert after_a["epoch"] == after_b["epoch"] == epoch_before + 1
    assert after_b["variants"]["v1"]["configured_weight"] == pytest.approx(0.9)
    # Still sticky across instances under the new weights.
    customers = [f"after-change-{i}" for i in range(20)]
    assert [predict(pair.a, c)["model_version"] for c in customers] == [
        predict(pair.b, c)["model_version"] for c in customers
    ]
