"""Two replicas on one PostgreSQL ledger serving different v2 models.

Like a rolling deploy half done: instance A still serves the old
``churn_v2`` tag, instance B (started after a retrain) the new one. B's
start makes epoch 2 (``model_changed``); A keeps answering in it. The
statistics must keep the two models apart (they use the model recorded for
the epoch, B's), and the ``mixed_models`` condition must show in
``/ab-test/stats`` and as the ``churn_ab_mixed_models`` gauge (issue #18).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import BentoServer, start_bento_server, train_models
from tests.support.faults import metric_sum
from tests.support.postgres_server import PostgresServer

pytestmark = pytest.mark.postgres

EXPERIMENT = "churn-v1-vs-v2"
# A change reaches the other instance at its next state poll (1 s); the bound
# only keeps a broken build from hanging.
PROPAGATION_BOUND_S = 15.0


@dataclass
class Replicas:
    a: BentoServer  # the old v2 model
    b: BentoServer  # the new one
    old_v2: str
    new_v2: str


def _latest(home: Path, name: str) -> str:
    """The tag ``name:latest`` resolves to in the store at ``home``."""
    return f"{name}:{(home / 'models' / name / 'latest').read_text().strip()}"


@pytest.fixture(scope="module")
def replicas(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("mixed-models")
    home = root / "home"
    shutil.copytree(trained_home / "models", home / "models", symlinks=True)
    old_v2 = _latest(home, "churn_v2")
    train_models(home)
    new_v2 = _latest(home, "churn_v2")
    assert old_v2 != new_v2
    postgres = PostgresServer().start()
    servers: list[BentoServer] = []
    try:
        url = postgres.create_database("churn_ab")
        env = {"CHURN_AB_LEDGER_URL": url}
        servers.append(
            start_bento_server(
                home,
                root / "a",
                env={**env, "CHURN_AB_V2_MODEL": old_v2},
                entry_workers=1,
            )
        )
        servers.append(start_bento_server(home, root / "b", env=env, entry_workers=1))
        yield Replicas(servers[0], servers[1], old_v2, new_v2)
    finally:
        leftovers = {server.url: server.stop() for server in servers}
        postgres_leftover = postgres.stop()
    assert not any(leftovers.values()), f"bentoml serve left processes: {leftovers}"
    assert not postgres_leftover, f"PostgreSQL left processes: {postgres_leftover}"


def _get(server: BentoServer, path: str) -> Any:
    response = httpx.get(f"{server.url}{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json() if path != "/metrics" else response.text


def _answer_and_label(server: BentoServer, prefix: str, n: int) -> Counter[str]:
    """Labelled answers per variant."""
    answered: Counter[str] = Counter()
    with httpx.Client(timeout=30) as client:  # not a client (~20 ms) per call
        for i in range(n):
            customer = {**EXAMPLE_CUSTOMER, "customerID": f"{prefix}-{i}"}
            answer = client.post(f"{server.url}/predict", json=customer)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            label = {"request_id": body["request_id"], "churned": i % 2 == 0}
            feedback = client.post(f"{server.url}/feedback", json=label)
            assert feedback.status_code == 200, feedback.text
            answered[body["model_version"]] += 1
    return answered


def _wait_until_a_serves_epoch_2(replicas: Replicas) -> None:
    deadline = time.monotonic() + PROPAGATION_BOUND_S
    while _get(replicas.a, "/ab-test/stats")["epoch"] != 2:
        assert time.monotonic() < deadline, "A never saw epoch 2"
        time.sleep(0.2)


def test_the_second_replica_starts_epoch_2_and_both_serve_it(
    replicas: Replicas,
) -> None:
    kinds = [t["kind"] for t in _get(replicas.b, "/ab-test/transitions")]
    assert kinds == ["created", "model_changed"]
    _wait_until_a_serves_epoch_2(replicas)
    assert _get(replicas.a, "/models")["models"]["v2"]["tag"] == replicas.old_v2
    assert _get(replicas.b, "/models")["models"]["v2"]["tag"] == replicas.new_v2


def test_mixed_models_alarm_and_statistics_split_by_model(
    replicas: Replicas,
) -> None:
    _wait_until_a_serves_epoch_2(replicas)
    from_a = _answer_and_label(replicas.a, "a", 50)
    from_b = _answer_and_label(replicas.b, "b", 50)
    assert from_a["v2"] > 0 and from_b["v2"] > 0  # 50 customers at 50/50
    for server in (replicas.a, replicas.b):
        stats = _get(server, "/ab-test/stats")
        assert stats["epoch"] == 2
        assert stats["models"]["v2"]["tag"] == replicas.new_v2
        mixed = {m["variant"]: m for m in stats["mixed_models"]}
        assert set(mixed) == {"v2"}, stats["mixed_models"]
        assert set(mixed["v2"]["tags"]) == {replicas.old_v2, replicas.new_v2}
        assert len(set(mixed["v2"]["model_ids"])) == 2
        # The statistics judge the epoch's model only: B's v2 labels, and
        # every v1 label (one v1 model on both replicas).
        quality = stats["quality"]
        assert quality["v2"]["labelled"] == from_b["v2"]
        assert quality["v1"]["labelled"] == from_a["v1"] + from_b["v1"]
        gauge = metric_sum(
            _get(server, "/metrics"), "churn_ab_mixed_models", experiment=EXPERIMENT
        )
        assert gauge == 1
