"""The experiment engine end to end, each scenario on its own real server."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from ab_router.assignment import assign
from ab_router.config import ExperimentConfig
from ab_router.ledger.codecs import compact_request_id
from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import (
    ADMIN_TOKEN,
    BentoServer,
    placement_env,
    start_bento_server,
)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SALT = "churn-ab-1"  # the service's default salt


def customer(i: int | str) -> dict[str, Any]:
    return {**EXAMPLE_CUSTOMER, "customerID": f"cust-{i}"}


def predict_many(server: BentoServer, customers: list[dict[str, Any]]) -> list[dict]:
    # One client for all calls: httpx.post builds a client (and its SSL
    # context, ~20 ms of CPU) per call, which for 1,000 calls cost 20 s.
    with httpx.Client(timeout=30) as client:

        def call(body: dict[str, Any]) -> dict:
            response = client.post(f"{server.url}/predict", json=body)
            assert response.status_code == 200, response.text
            return dict(response.json())

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(call, customers))


def predict_batch(server: BentoServer, customers: list[dict[str, Any]]) -> list[dict]:
    response = httpx.post(
        f"{server.url}/predict_batch", json={"customers": customers}, timeout=60
    )
    assert response.status_code == 200, response.text
    return list(response.json()["predictions"])


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def ledger_query(
    server: BentoServer, sql: str, params: tuple[object, ...] = ()
) -> list[tuple]:
    with sqlite3.connect(f"file:{server.ledger_path}?mode=ro", uri=True) as db:
        return db.execute(sql, params).fetchall()


def stats(server: BentoServer) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/ab-test/stats", timeout=30).json())


STARTING_WEIGHTS = {"v1": 0.5, "v2": 0.5}


def admin(server: BentoServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.url}{path}", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    return dict(response.json())


def restore_starting_point(server: BentoServer) -> None:
    """Split mode, v1 champion, 50/50: where every test on the shared server
    starts, whatever the previous one changed or where it failed."""
    state = admin(server, "/ab-test/mode", {"mode": "split", "reason": "teardown"})
    if state["champion"] != "v1":
        admin(server, "/ab-test/promote", {"reason": "teardown"})
    state = admin(
        server, "/ab-test/weights", {"weights": STARTING_WEIGHTS, "reason": "teardown"}
    )
    assert state["mode"] == "split" and state["champion"] == "v1", state
    assert state["effective_weights"] == STARTING_WEIGHTS, state


@pytest.fixture(scope="module")
def module_server(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory, placement: str
) -> Iterator[BentoServer]:
    server = start_bento_server(
        trained_home,
        tmp_path_factory.mktemp(f"experiment-{placement}"),
        env=placement_env(placement),
    )
    try:
        yield server
    finally:
        leftover = server.stop()
    assert not leftover, f"bentoml serve left processes behind: {leftover}"


def transition_count(server: BentoServer) -> int:
    return len(httpx.get(f"{server.url}/ab-test/transitions", timeout=30).json())


@pytest.fixture
def server(module_server: BentoServer) -> Iterator[BentoServer]:
    """The module's server, put back to the starting point after each test
    that changed it (in teardown, so a failed assert cannot leak its changes).
    A test that changed nothing is left alone: every reset opens an epoch."""
    before = transition_count(module_server)
    yield module_server
    if transition_count(module_server) != before:
        restore_starting_point(module_server)


def test_stickiness_for_1000_customers_across_calls_and_a_restart(
    trained_home: Path, tmp_path: Path
) -> None:
    customers = [customer(i) for i in range(1000)]
    first = start_bento_server(trained_home, tmp_path)
    try:
        answers = predict_many(first, customers) + predict_batch(first, customers)
    finally:
        assert not first.stop()
    again = start_bento_server(trained_home, tmp_path)  # same ledger
    try:
        answers += predict_batch(again, customers)
    finally:
        assert not again.stop()
    # Stickiness is about the assignment; a fallback (rare, recorded) may
    # answer from the other variant, so answers are checked where none happened.
    assigned = [a["assigned_variant"] for a in answers]
    single, batched, after_restart = (
        assigned[:1000],
        assigned[1000:2000],
        assigned[2000:],
    )
    assert single == batched == after_restart
    for answer in answers:
        if not answer["fallback"]:
            assert answer["model_version"] == answer["assigned_variant"]
    expected = ExperimentConfig(name="x", salt=SALT, weights={"v1": 0.5, "v2": 0.5})
    assert single == [assign(c["customerID"], expected).variant for c in customers]
    assert 400 < single.count("v1") < 600


def test_admin_needs_the_token(server: BentoServer) -> None:
    body = {"weights": {"v1": 1.0, "v2": 0.0}}
    missing = httpx.post(f"{server.url}/ab-test/weights", json=body)
    wrong = httpx.post(
        f"{server.url}/ab-test/weights",
        json=body,
        headers={"Authorization": "Bearer nope"},
    )
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["field"] == "Authorization"
    bad = httpx.post(
        f"{server.url}/ab-test/weights",
        json={"weights": {"v1": 0.7, "v3": 0.3}},
        headers=ADMIN,
    )
    assert bad.status_code == 422 and "v3" in bad.text


def test_an_oversized_admin_body_is_413_and_changes_nothing(
    server: BentoServer,
) -> None:
    before = httpx.get(f"{server.url}/ab-test/transitions").json()
    body = {"weights": {"v1": 1.0, "v2": 0.0}, "reason": "x" * 70_000}
    response = httpx.post(f"{server.url}/ab-test/weights", json=body, headers=ADMIN)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert response.json()["error"]["field"] == "body"
    assert httpx.get(f"{server.url}/ab-test/transitions").json() == before


def test_weights_changed_at_runtime_reach_every_worker(server: BentoServer) -> None:
    before = stats(server)
    response = httpx.post(
        f"{server.url}/ab-test/weights",
        json={"weights": {"v1": 1.0, "v2": 0.0}, "reason": "all to v1"},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    assert response.json()["epoch"] == before["epoch"] + 1
    time.sleep(1.5)  # workers re-read the state at most once a second
    answers = predict_many(server, [customer(f"w{i}") for i in range(200)])
    assert {a["assigned_variant"] for a in answers} == {"v1"}
    assert {a["model_version"] for a in answers if not a["fallback"]} == {"v1"}
    transitions = httpx.get(f"{server.url}/ab-test/transitions").json()
    assert transitions[-1]["kind"] == "weights"
    assert transitions[-1]["reason"] == "all to v1"


def test_mode_promote_rollback_and_reset_through_the_admin_api(
    server: BentoServer,
) -> None:
    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return admin(server, path, body)

    start = call("/ab-test/mode", {"mode": "shadow", "reason": "dry run v2"})
    assert start["mode"] == "shadow"
    assert start["effective_weights"] == {"v1": 1.0, "v2": 0.0}
    promoted = call("/ab-test/promote", {"reason": "v2 won"})
    assert (promoted["champion"], promoted["challenger"]) == ("v2", "v1")
    assert promoted["effective_weights"] == {"v2": 1.0, "v1": 0.0}
    time.sleep(1.5)
    answers = predict_many(server, [customer(f"pr{i}") for i in range(40)])
    assert {a["assigned_variant"] for a in answers} == {"v2"}
    rolled = call("/ab-test/rollback", {"reason": "changed our mind"})
    # v2 is the champion now: a rollback gives it everything.
    assert rolled["effective_weights"] == {"v2": 1.0, "v1": 0.0}
    epoch = call("/ab-test/reset", {})["epoch"]
    assert epoch == rolled["epoch"] + 1
    kinds = [t["kind"] for t in httpx.get(f"{server.url}/ab-test/transitions").json()]
    assert kinds[-4:] == ["mode:shadow", "promote", "rollback", "reset"]
    old = httpx.get(f"{server.url}/ab-test/report", params={"epoch": promoted["epoch"]})
    assert old.status_code == 200 and old.json()["epoch"] == promoted["epoch"]
    assert httpx.get(f"{server.url}/ab-test/report?epoch=999").status_code == 404


def test_feedback_joins_and_is_idempotent(server: BentoServer) -> None:
    answer = predict_many(server, [customer("fb-1")])[0]
    url = f"{server.url}/feedback"
    first = httpx.post(url, json={"request_id": answer["request_id"], "churned": True})
    assert first.json() == {"request_id": answer["request_id"], "outcome": "accepted"}
    repeat = httpx.post(url, json={"request_id": answer["request_id"], "churned": True})
    assert repeat.status_code == 200 and repeat.json()["outcome"] == "duplicate"
    conflict = httpx.post(
        url, json={"request_id": answer["request_id"], "churned": False}
    )
    assert conflict.status_code == 409
    assert answer["request_id"] in conflict.json()["error"]["message"]
    unknown = httpx.post(url, json={"request_id": "missing", "churned": True})
    assert unknown.status_code == 404
    rows = ledger_query(
        server,
        "SELECT label FROM exposures WHERE request_id = ?",
        (compact_request_id(answer["request_id"]),),  # 16 bytes on SQLite
    )
    assert rows == [(1,)]
    by_customer = httpx.post(url, json={"customerID": "cust-fb-1", "churned": True})
    assert by_customer.json()["outcome"] == "duplicate"  # same latest exposure
    batch = httpx.post(
        f"{server.url}/feedback_batch",
        json={
            "labels": [
                {"request_id": answer["request_id"], "churned": True},
                {"request_id": "missing-too", "churned": False},
            ]
        },
    )
    assert batch.status_code == 404
    assert batch.json()["error"]["field"].startswith("labels[1]")


def test_injected_45_55_leak_raises_the_srm_alarm(server: BentoServer) -> None:
    # A fresh 50/50 epoch, whatever earlier tests left behind.
    reset = httpx.post(
        f"{server.url}/ab-test/weights",
        json={"weights": {"v1": 0.5, "v2": 0.5}, "reason": "srm check"},
        headers=ADMIN,
    )
    assert reset.status_code == 200
    time.sleep(1.5)
    config = ExperimentConfig(name="x", salt=SALT, weights={"v1": 0.5, "v2": 0.5})
    # A leak: customers bound for v1 are dropped upstream 18% of the time,
    # which turns a 50/50 split into about 45/55.
    chosen: list[dict[str, Any]] = []
    i = 0
    v1_seen = 0
    while len(chosen) < 4000:
        body = customer(f"srm-{i}")
        i += 1
        if assign(body["customerID"], config).variant == "v1":
            v1_seen += 1
            if v1_seen % 11 in (0, 5):
                continue
        chosen.append(body)
    for start in range(0, len(chosen), 1000):
        predict_batch(server, chosen[start : start + 1000])
    srm = stats(server)["srm"]
    assert srm["alarm"] is True
    assert srm["p_value"] < 0.001
    metrics = httpx.get(f"{server.url}/metrics").text
    line = next(m for m in metrics.splitlines() if m.startswith("churn_ab_srm_p_value"))
    assert float(line.rsplit(" ", 1)[1]) < 0.001


def test_shadow_mode_answers_from_the_champion_and_records_both(
    trained_home: Path, tmp_path: Path, placement: str
) -> None:
    env = {"CHURN_AB_MODE": "shadow", **placement_env(placement)}
    server = start_bento_server(trained_home, tmp_path, env=env)
    try:
        answers = predict_many(server, [customer(f"sh{i}") for i in range(60)])
        assert {a["model_version"] for a in answers} == {"v1"}

        def all_shadowed() -> bool:
            rows = ledger_query(
                server,
                "SELECT COUNT(*) FROM exposures WHERE shadow_probability IS NOT NULL",
            )
            return rows[0][0] == 60

        wait_for(all_shadowed)
        rows = ledger_query(
            server,
            "SELECT variant, shadow_variant, churn_probability, shadow_probability "
            "FROM exposures",
        )
        assert {(r[0], r[1]) for r in rows} == {("v1", "v2")}
        assert any(abs(r[2] - r[3]) > 1e-9 for r in rows)  # two different models
        report = httpx.get(f"{server.url}/ab-test/report").json()["summary"]
        assert report["design"] == "paired"
    finally:
        assert not server.stop()


def _model_worker(server: BentoServer, name: str) -> int:
    for pid in server.child_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if name.encode() in cmdline:
            return pid
    raise AssertionError(f"no {name} worker among {server.child_pids()}")


def test_canary_advances_when_healthy_and_rolls_back_when_the_challenger_fails(
    trained_home: Path, tmp_path: Path
) -> None:
    server = start_bento_server(
        trained_home,
        tmp_path,
        env={
            "CHURN_AB_MODE": "canary",
            "CHURN_AB_CANARY_STAGES": "0.2,0.5,1.0",
            "CHURN_AB_CANARY_MIN_REQUESTS": "30",
            "CHURN_AB_MODEL_TIMEOUT_S": "0.3",
            "CHURN_AB_BREAKER_COOLDOWN_S": "60",
        },
    )
    try:
        batch = 0

        def stage() -> int:
            return int(stats(server)["canary_stage"])

        def drive_until(condition: Callable[[], bool]) -> None:
            nonlocal batch
            for _ in range(60):
                predict_many(server, [customer(f"c{batch}-{i}") for i in range(40)])
                batch += 1
                if condition():
                    return
                time.sleep(0.3)
            raise AssertionError(f"canary stuck at stage {stage()}")

        drive_until(lambda: stage() >= 1)
        kinds = [
            t["kind"] for t in httpx.get(f"{server.url}/ab-test/transitions").json()
        ]
        assert "canary_advance" in kinds

        v2 = _model_worker(server, "churn_v2_model")
        os.kill(v2, signal.SIGSTOP)
        try:
            drive_until(lambda: stage() == -1)
        finally:
            os.kill(v2, signal.SIGCONT)
        transitions = httpx.get(f"{server.url}/ab-test/transitions").json()
        assert transitions[-1]["kind"] == "canary_rollback"
        assert "error rate" in transitions[-1]["reason"]
        assert transitions[-1]["weights"] == {"v1": 1.0, "v2": 0.0}
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'churn_ab_canary_rollbacks_total{experiment="churn-v1-vs-v2"} 1.0' in (
            metrics
        )
        fallbacks = ledger_query(
            server, "SELECT COUNT(*) FROM exposures WHERE fallback = 1"
        )[0][0]
        assert fallbacks > 0
    finally:
        assert not server.stop()
