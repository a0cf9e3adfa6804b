"""Faults against real servers: stopped and killed workers, restarts, a ledger
that refuses writes, a missing model.

Each server here has its own BENTOML_HOME (sharing the trained models) so its
start does not wipe the Prometheus files of the session server. Timeouts are
short so a stopped model costs half a second, not two.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import (
    BentoServer,
    placement_env,
    start_bento_server,
)
from tests.support.faults import (
    ENTRY_SERVICE,
    V1_SERVICE,
    V2_SERVICE,
    descendant_pids,
    exposure_rows,
    immutable,
    ledger_counts,
    ledger_files,
    metric_sum,
    private_home,
    stopped,
    worker_pids,
)
from tests.support.faulty_model import HANG_S, save_faulty_copy, set_mode

MODEL_TIMEOUT_S = 0.5
FAULT_ENV = {
    "CHURN_AB_MODEL_TIMEOUT_S": str(MODEL_TIMEOUT_S),
    "CHURN_AB_BREAKER_COOLDOWN_S": "1",
    "CHURN_AB_BREAKER_FAILURES": "2",
    "CHURN_AB_STATE_REFRESH_S": "0.2",
}


def _stop_and_check(server: BentoServer, workers: list[int] | None = None) -> None:
    """Stop the server by PID and prove none of its workers outlived it
    (``workers``: PIDs taken before the server was signalled, which no longer
    descend from it once it has exited)."""
    left = server.stop(also=workers or ())
    assert not left, f"workers outlived the server: {left}"


@pytest.fixture(scope="module")
def fault_server(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BentoServer]:
    # Stops model-service workers, so it runs in the services placement; the
    # model faults that exist in both placements are at the end of the module.
    root = tmp_path_factory.mktemp("faults")
    home = private_home(trained_home, root / "home")
    env = {**FAULT_ENV, **placement_env("services")}
    server = start_bento_server(home, root / "serve", env=env)
    try:
        yield server
    finally:
        _stop_and_check(server)


def _customer(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_CUSTOMER, **changes}


def _workers(server: BentoServer, name: str) -> list[int]:
    pids = worker_pids(server.pid).get(name, [])
    assert pids, f"no {name} worker under {server.pid}: {worker_pids(server.pid)}"
    return pids


def _wait_until(predicate: Any, *, attempts: int, pause_s: float = 0.2) -> bool:
    for _ in range(attempts):
        if predicate():
            return True
        time.sleep(pause_s)
    return False


def _metrics(client: httpx.Client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def test_stopped_v2_falls_back_to_v1_and_opens_the_breaker(
    fault_server: BentoServer,
) -> None:
    with httpx.Client(base_url=fault_server.url, timeout=30) as client:
        fallbacks_before = metric_sum(
            _metrics(client), "churn_ab_fallbacks_total", from_variant="v2"
        )
        answers = []
        with stopped(_workers(fault_server, V2_SERVICE)):
            for _ in range(60):
                response = client.post("/predict", json=_customer())
                assert response.status_code == 200, response.text
                answers.append(response.json())
            metrics_during = _metrics(client)

        to_v2 = [a for a in answers if a["assigned_variant"] == "v2"]
        assert to_v2, "no request was assigned to v2 in 60 tries"
        assert all(a["model_version"] == "v1" and a["fallback"] for a in to_v2)
        assert all(
            a["model_version"] == "v1" and not a["fallback"]
            for a in answers
            if a["assigned_variant"] == "v1"
        )
        rows = exposure_rows(fault_server.ledger_path, [a["request_id"] for a in to_v2])
        assert len(rows) == len(to_v2)
        assert all(
            r["fallback"] == 1
            and r["variant"] == "v1"
            and r["assigned_variant"] == "v2"
            for r in rows.values()
        )
        grown = (
            metric_sum(metrics_during, "churn_ab_fallbacks_total", from_variant="v2")
            - fallbacks_before
        )
        assert grown == len(to_v2)
        # The breaker opened: every entry worker reports v2 as down.
        assert metric_sum(metrics_during, "churn_ab_model_up", variant="v2") == 0

        # SIGCONT: after the cool-down a trial call closes the circuit again.
        def v2_answers() -> bool:
            answer = client.post("/predict", json=_customer()).json()
            return answer["model_version"] == "v2" and not answer["fallback"]

        assert _wait_until(v2_answers, attempts=100), "v2 never answered again"


def _all_workers_report(client: httpx.Client, status: int) -> bool:
    # /health answers from whichever entry worker accepts the connection, with
    # that worker's breakers; several in a row in agreement cover both.
    return all(client.get("/health").status_code == status for _ in range(8))


def _open_both_breakers(client: httpx.Client) -> None:
    """With both models stopped, send /predict until every worker is unready."""
    for _ in range(40):
        response = client.post("/predict", json=_customer())
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "models_unavailable"
        assert "v1" in error["message"] and "v2" in error["message"]
        if _all_workers_report(client, 503):
            return
    pytest.fail("/health stayed 200 with both model services stopped")


def _heal(client: httpx.Client) -> None:
    """Send traffic until every worker's breakers are closed again."""
    for _ in range(100):
        client.post("/predict", json=_customer())
        if _all_workers_report(client, 200):
            return
        time.sleep(0.2)
    pytest.fail("the entry workers never became healthy again")


def test_both_models_stopped_gives_503_and_not_ready(
    fault_server: BentoServer,
) -> None:
    models = _workers(fault_server, V1_SERVICE) + _workers(fault_server, V2_SERVICE)
    with httpx.Client(base_url=fault_server.url, timeout=30) as client:
        before = ledger_counts(fault_server.ledger_path)
        with stopped(models):
            _open_both_breakers(client)
            # BentoML's /readyz asks the entry's own __is_ready__ first: with
            # the breakers open it answers 503 at once (before they open it
            # waits on the stopped dependencies, up to the request timeout).
            readyz = [client.get("/readyz").status_code for _ in range(4)]
            assert readyz == [503] * 4
            assert ledger_counts(fault_server.ledger_path) == before
        _heal(client)
        assert client.get("/readyz").status_code == 200


def test_readiness_recovers_without_traffic(fault_server: BentoServer) -> None:
    models = _workers(fault_server, V1_SERVICE) + _workers(fault_server, V2_SERVICE)
    with httpx.Client(base_url=fault_server.url, timeout=30) as client:
        try:
            with stopped(models):
                _open_both_breakers(client)
            # Only probes from here: what a load balancer does to an unready pod.
            assert _wait_until(
                lambda: _all_workers_report(client, 200), attempts=20, pause_s=0.5
            ), "still unready 10 cool-downs after the models came back"
        finally:
            _heal(client)


@dataclass
class LoadResult:
    answered: list[str] = field(default_factory=list)
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


def _load(
    url: str, stop: threading.Event, result: LoadResult, lock: threading.Lock
) -> None:
    """Send /predict until told to stop (or 400 requests); keep each 200's id."""
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(400):
            if stop.is_set():
                return
            try:
                response = client.post(
                    "/predict", json=_customer(customerID=f"load-{i % 50}")
                )
            except httpx.HTTPError:
                with lock:
                    result.failures += 1
                time.sleep(0.05)
                continue
            with lock:
                result.statuses[response.status_code] = (
                    result.statuses.get(response.status_code, 0) + 1
                )
                if response.status_code == 200:
                    result.answered.append(response.json()["request_id"])


@contextlib.contextmanager
def _under_load(url: str, threads: int = 4) -> Iterator[LoadResult]:
    result, lock, stop = LoadResult(), threading.Lock(), threading.Event()
    pool = [
        threading.Thread(target=_load, args=(url, stop, result, lock), daemon=True)
        for _ in range(threads)
    ]
    for thread in pool:
        thread.start()
    try:
        yield result
    finally:
        stop.set()
        for thread in pool:
            thread.join(timeout=30)


def _wait_for_answers(result: LoadResult, count: int) -> None:
    assert _wait_until(lambda: len(result.answered) >= count, attempts=150), (
        f"load got only {len(result.answered)} answers: {result}"
    )


def test_killed_entry_worker_loses_no_answered_request(
    fault_server: BentoServer,
) -> None:
    victim = _workers(fault_server, ENTRY_SERVICE)[0]
    with _under_load(fault_server.url) as result:
        _wait_for_answers(result, 20)
        os.kill(victim, signal.SIGKILL)
        answered_at_kill = len(result.answered)
        _wait_for_answers(result, answered_at_kill + 40)

    rows = exposure_rows(fault_server.ledger_path, result.answered)
    missing = set(result.answered) - set(rows)
    assert not missing, f"{len(missing)} answered requests are not in the ledger"

    def restarted() -> bool:
        entry = worker_pids(fault_server.pid).get(ENTRY_SERVICE, [])
        return len(entry) == 2 and victim not in entry

    assert _wait_until(restarted, attempts=150), worker_pids(fault_server.pid)
    with httpx.Client(base_url=fault_server.url, timeout=30) as client:
        assert _wait_until(
            lambda: client.get("/readyz").status_code == 200, attempts=100
        )
        for _ in range(10):  # both workers (old and new) answer
            assert client.post("/predict", json=_customer()).status_code == 200


def test_ledger_refusing_writes_fails_requests_with_503(
    fault_server: BentoServer,
) -> None:
    with httpx.Client(base_url=fault_server.url, timeout=30) as client:
        first = client.post("/predict", json=_customer(customerID="ledger-fault"))
        assert first.status_code == 200
        errors_before = metric_sum(
            _metrics(client), "churn_ab_errors_total", kind="ledger"
        )
        before = ledger_counts(fault_server.ledger_path)
        try:
            frozen = immutable(ledger_files(fault_server.ledger_path))
            frozen.__enter__()
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"chattr +i is not available here: {exc}")
        try:
            responses = [
                client.post("/predict", json=_customer()) for _ in range(6)
            ] + [
                client.post(
                    "/predict_batch", json={"customers": [_customer(), _customer()]}
                ),
                client.post(
                    "/feedback",
                    json={"request_id": first.json()["request_id"], "churned": True},
                ),
            ]
        finally:
            frozen.__exit__(None, None, None)
        for response in responses:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "ledger_unavailable"
        assert ledger_counts(fault_server.ledger_path) == before
        errors = metric_sum(_metrics(client), "churn_ab_errors_total", kind="ledger")
        assert errors - errors_before >= 7  # the 6 predictions and the batch

        recovered = client.post("/predict", json=_customer())
        assert recovered.status_code == 200
        assert recovered.json()["request_id"] in exposure_rows(
            fault_server.ledger_path, [recovered.json()["request_id"]]
        )


def test_restart_under_load_keeps_answers_and_sticky_assignment(
    trained_home: Path, tmp_path: Path
) -> None:
    home = private_home(trained_home, tmp_path / "home")
    workdir = tmp_path / "serve"
    sticky = _customer(customerID="sticky-across-restart")
    first = start_bento_server(home, workdir, env=FAULT_ENV)
    first_workers = descendant_pids(first.pid)
    try:
        before = httpx.post(f"{first.url}/predict", json=sticky, timeout=30).json()
        with _under_load(first.url) as result:
            _wait_for_answers(result, 20)
            first.process.send_signal(signal.SIGTERM)  # by PID, under load
            first.process.wait(timeout=30)
    finally:
        _stop_and_check(first, first_workers)
    answered_by_first = list(result.answered)

    second = start_bento_server(home, workdir, env=FAULT_ENV)
    try:
        assert second.ledger_path == first.ledger_path
        after = httpx.post(f"{second.url}/predict", json=sticky, timeout=30).json()
        with _under_load(second.url) as again:
            _wait_for_answers(again, 20)
    finally:
        _stop_and_check(second)

    assert before["assignment_unit"] == after["assignment_unit"] == "customer"
    assert after["assigned_variant"] == before["assigned_variant"]
    assert after["model_version"] == before["model_version"]
    answered = answered_by_first + again.answered + [before["request_id"]]
    rows = exposure_rows(first.ledger_path, answered)
    missing = set(answered) - set(rows)
    assert not missing, f"{len(missing)} answered requests are not in the ledger"


def _expect_start_failure(home: Path, workdir: Path, env: dict[str, str]) -> str:
    with pytest.raises(RuntimeError) as raised:
        server = start_bento_server(home, workdir, env=env, ready_timeout_s=20)
        _stop_and_check(server)  # started after all: do not leave it running
    message = str(raised.value)
    code = re.search(r"exit (-?\d+|None)\)", message)
    assert code is not None, message[-2000:]
    assert code.group(1) not in ("0", "None"), "the start did not fail by itself"
    assert int(code.group(1)) > 0, message[-2000:]
    return message


def test_missing_model_tag_stops_the_start_naming_it(
    trained_home: Path, tmp_path: Path
) -> None:
    home = private_home(trained_home, tmp_path / "home")
    message = _expect_start_failure(
        home, tmp_path / "serve", {"CHURN_AB_V2_MODEL": "churn_v2:doesnotexist"}
    )
    assert "churn_v2:doesnotexist" in message
    assert "python -m training" in message


def test_unopenable_ledger_stops_the_start_naming_the_setting(
    trained_home: Path, tmp_path: Path
) -> None:
    home = private_home(trained_home, tmp_path / "home")
    not_a_file = tmp_path / "ledger-is-a-directory"
    not_a_file.mkdir()
    message = _expect_start_failure(
        home, tmp_path / "serve", {"CHURN_AB_LEDGER_PATH": str(not_a_file)}
    )
    assert "CHURN_AB_LEDGER_PATH" in message


# -- model faults in either placement (issue #13) ---------------------------


@dataclass
class Switchable:
    server: BentoServer
    switch: Path


@pytest.fixture(scope="module")
def switchable(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory, placement: str
) -> Iterator[Switchable]:
    """A server whose v2 model raises or hangs when the test says so."""
    root = tmp_path_factory.mktemp(f"switchable-{placement}")
    home = private_home(trained_home, root / "home")
    switch = root / "v2-mode"
    tag = save_faulty_copy(home, "churn_v2:latest", "churn_v2_switchable", switch)
    env = {**FAULT_ENV, **placement_env(placement), "CHURN_AB_V2_MODEL": tag}
    server = start_bento_server(home, root / "serve", env=env)
    try:
        yield Switchable(server, switch)
    finally:
        set_mode(switch, "ok")
        _stop_and_check(server)


def _answers_with_v2_faulty(
    switchable: Switchable, mode: str, count: int = 40
) -> list[tuple[dict[str, Any], float]]:
    """Answers (and their seconds) while v2 is switched to ``mode``; then the
    switch goes back to ``ok`` and v2 must answer again."""
    answers = []
    with httpx.Client(base_url=switchable.server.url, timeout=30) as client:
        set_mode(switchable.switch, mode)
        try:
            for _ in range(count):
                started = time.monotonic()
                response = client.post("/predict", json=_customer())
                assert response.status_code == 200, response.text
                answers.append((response.json(), time.monotonic() - started))
            metrics = _metrics(client)
        finally:
            set_mode(switchable.switch, "ok")
        assert metric_sum(metrics, "churn_ab_model_up", variant="v2") == 0

        def v2_answers() -> bool:
            answer = client.post("/predict", json=_customer()).json()
            return answer["model_version"] == "v2" and not answer["fallback"]

        assert _wait_until(v2_answers, attempts=150), "v2 never answered again"
    to_v2 = [(a, s) for a, s in answers if a["assigned_variant"] == "v2"]
    assert to_v2, f"no request was assigned to v2 in {count} tries"
    assert all(a["model_version"] == "v1" and a["fallback"] for a, _ in to_v2)
    return to_v2


def test_a_model_that_raises_falls_back_and_opens_its_breaker(
    switchable: Switchable,
) -> None:
    with httpx.Client(base_url=switchable.server.url, timeout=30) as client:
        errors_before = metric_sum(
            _metrics(client), "churn_ab_errors_total", kind="model_error"
        )
    _answers_with_v2_faulty(switchable, "raise")
    with httpx.Client(base_url=switchable.server.url, timeout=30) as client:
        metrics = _metrics(client)
    errors = metric_sum(metrics, "churn_ab_errors_total", kind="model_error")
    # A breaker opens after BREAKER_FAILURES errors, each counted.
    assert errors - errors_before >= int(FAULT_ENV["CHURN_AB_BREAKER_FAILURES"])


def test_a_model_that_hangs_is_cut_off_by_the_model_timeout(
    switchable: Switchable,
) -> None:
    to_v2 = _answers_with_v2_faulty(switchable, "hang")
    # A hung call holds its model (its thread inline, its worker as a service)
    # for HANG_S; the caller waits at most the model timeout, then v1 answers.
    assert max(seconds for _, seconds in to_v2) < HANG_S, to_v2
