"""Retraining and restarting starts a new epoch; the old one keeps its numbers.

As a user would: serve, send traffic and feedback, stop, retrain with
``python -m training`` into the same BENTOML_HOME (new ``latest`` tags), and
start again on the same ledger. Then a start whose models differ from the
epoch's with ``CHURN_AB_ON_MODEL_CHANGE=refuse`` must exit 2 in one line and
leave the ledger alone (issue #18).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ab_router.ledger import SqliteLedger
from churn_features.schema import EXAMPLE_CUSTOMER
from tests.e2e.test_startup_errors import (
    _assert_refused_in_one_line,
    _serve_expecting_exit,
)
from tests.support.bento_server import BentoServer, start_bento_server, train_models

EXPERIMENT = "churn-v1-vs-v2"


@dataclass
class Retrained:
    home: Path
    workdir: Path
    before: dict[str, Any]
    """/models, /ab-test/report?epoch=1 and /ab-test/transitions before."""
    after: dict[str, Any]
    """The same after retraining and restarting, plus /ab-test/stats."""


def _get(server: BentoServer, path: str) -> Any:
    response = httpx.get(f"{server.url}{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _tags(server: BentoServer) -> dict[str, str]:
    models = _get(server, "/models")["models"]
    return {variant: models[variant]["tag"] for variant in models}


def _traffic_with_feedback(server: BentoServer, prefix: str, n: int) -> None:
    with httpx.Client(timeout=30) as client:  # not a client (~20 ms) per call
        for i in range(n):
            customer = {**EXAMPLE_CUSTOMER, "customerID": f"{prefix}-{i}"}
            answer = client.post(f"{server.url}/predict", json=customer)
            assert answer.status_code == 200, answer.text
            label = {"request_id": answer.json()["request_id"], "churned": i % 3 == 0}
            feedback = client.post(f"{server.url}/feedback", json=label)
            assert feedback.status_code == 200, feedback.text


def _views(server: BentoServer) -> dict[str, Any]:
    return {
        "models": _tags(server),
        "report_1": _get(server, "/ab-test/report?epoch=1"),
        "transitions": _get(server, "/ab-test/transitions"),
    }


def _stop(server: BentoServer) -> None:
    leftover = server.stop()
    assert not leftover, f"bentoml serve left processes behind: {leftover}"


@pytest.fixture(scope="module")
def retrained(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Retrained]:
    root = tmp_path_factory.mktemp("model-change")
    home = root / "home"
    # A store of its own: retraining must not move the shared one's latest.
    shutil.copytree(trained_home / "models", home / "models", symlinks=True)
    workdir = root / "serve"
    server = start_bento_server(home, workdir, entry_workers=2)
    try:
        _traffic_with_feedback(server, "before", 40)
        before = _views(server)
    finally:
        _stop(server)
    train_models(home)
    server = start_bento_server(home, workdir, entry_workers=2)
    try:
        after = {**_views(server), "stats": _get(server, "/ab-test/stats")}
    finally:
        _stop(server)
    yield Retrained(home, workdir, before, after)


def test_retraining_and_restarting_starts_one_new_epoch(retrained: Retrained) -> None:
    old, new = retrained.before["models"], retrained.after["models"]
    assert all(old[v] != new[v] for v in ("v1", "v2")), (old, new)
    assert [t["kind"] for t in retrained.before["transitions"]] == ["created"]
    # Two entry workers, one instance: one transition.
    kinds = [t["kind"] for t in retrained.after["transitions"]]
    assert kinds == ["created", "model_changed"]
    change = retrained.after["transitions"][-1]
    assert change["epoch"] == 2 == retrained.after["stats"]["epoch"]
    for variant in ("v1", "v2"):
        assert f"{variant} {old[variant]} -> {new[variant]}" in change["reason"]
    assert change["actor"] not in ("", "startup")


def test_the_old_epoch_keeps_its_statistics_and_models(retrained: Retrained) -> None:
    before, after = retrained.before["report_1"], retrained.after["report_1"]
    assert sum(before["summary"]["labelled"].values()) == 40
    assert after["summary"] == before["summary"]
    assert after["transitions"] == before["transitions"]
    assert (before["current_epoch"], after["current_epoch"]) == (1, 2)
    old = retrained.before["models"]
    ledger = SqliteLedger(retrained.workdir / "ledger.sqlite3")
    recorded = {m.variant: m.tag for m in ledger.epoch_models(EXPERIMENT, 1)}
    ledger.close()
    assert recorded == old
    # /ab-test/report names the epoch's models (h-live's part of #18).
    assert {v: m["tag"] for v, m in after["models"].items()} == old


def test_a_refusing_start_exits_2_and_changes_nothing(
    retrained: Retrained, tmp_path: Path
) -> None:
    old, new = retrained.before["models"], retrained.after["models"]
    ledger_path = retrained.workdir / "ledger.sqlite3"
    ledger = SqliteLedger(ledger_path)
    transitions = ledger.transitions(EXPERIMENT)
    ledger.close()
    refusal = _serve_expecting_exit(
        retrained.home,
        retrained.workdir,
        {"CHURN_AB_ON_MODEL_CHANGE": "refuse", "CHURN_AB_V2_MODEL": old["v2"]},
    )
    _assert_refused_in_one_line(refusal, "CHURN_AB_ON_MODEL_CHANGE=refuse")
    line = next(x for x in refusal.stderr_lines() if "refuse" in x)
    assert f"v2 {new['v2']} -> {old['v2']}" in line
    assert f"CHURN_AB_V2_MODEL={new['v2']}" in line
    assert "CHURN_AB_ON_MODEL_CHANGE=new_epoch to start epoch 3" in line
    ledger = SqliteLedger(ledger_path)
    assert ledger.transitions(EXPERIMENT) == transitions
    ledger.close()
