"""Metrics that never freeze silently (issue #16), against real servers.

Two instances on one BENTOML_HOME, a worker killed with SIGKILL under load,
and a multiprocess directory wiped under a running server.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from churn_features.schema import EXAMPLE_CUSTOMER
from serving.metrics_dir import INSTANCES_DIR
from tests.support.bento_server import BentoServer, start_bento_server
from tests.support.faults import (
    ENTRY_SERVICE,
    metric_sum,
    private_home,
    worker_pids,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CHECK_WAIT_S = 20.0  # the self-check runs every 5 s; margin for a busy machine


def _scrape(url: str) -> tuple[Samples, dict[str, str]]:
    """Every sample of /metrics, and each family's type."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    samples: Samples = {}
    kinds: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, kinds


def _predictions(url: str) -> float:
    return metric_sum(httpx.get(f"{url}/metrics", timeout=30).text, "predictions_total")


def _predict(url: str, count: int) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(count):
            assert client.post("/predict", json=EXAMPLE_CUSTOMER).status_code == 200


def _eventually(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


@pytest.fixture
def stop_afterwards() -> Iterator[list[BentoServer]]:
    servers: list[BentoServer] = []
    yield servers
    leftovers = [pid for server in reversed(servers) for pid in server.stop()]
    assert not leftovers, f"servers left processes behind: {leftovers}"


def test_a_second_instance_on_the_same_home_does_not_freeze_the_first(
    trained_home: Path, tmp_path: Path, stop_afterwards: list[BentoServer]
) -> None:
    home = private_home(trained_home, tmp_path / "one-home")
    first = start_bento_server(home, tmp_path / "first", own_home=False)
    stop_afterwards.append(first)
    _predict(first.url, 3)
    second = start_bento_server(home, tmp_path / "second", own_home=False)
    stop_afterwards.append(second)

    before = _predictions(first.url)
    _predict(first.url, 7)
    assert _predictions(first.url) - before == 7
    _predict(second.url, 5)
    assert _predictions(second.url) == 5
    assert httpx.get(f"{first.url}/health").json()["metrics"] == "ok"
    instance_dirs = sorted(p.name for p in (home / INSTANCES_DIR).iterdir())
    assert len(instance_dirs) == 2, instance_dirs
    # Every worker, entry and model, checked its directory at start.
    for server in (first, second):
        assert "metrics degraded" not in server.log(), server.log()[-3000:]


def _counter_like(samples: Samples, kinds: dict[str, str]) -> Samples:
    """Samples that may never decrease: counters, histogram buckets, counts, sums."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    names = {
        family + suffix
        for family, kind in kinds.items()
        for suffix in suffixes.get(kind, ())
    }
    return {key: value for key, value in samples.items() if key[0] in names}


def _load(url: str, stop: threading.Event, answered: list[int]) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(600):  # bounded even if never told to stop
            if stop.is_set():
                return
            try:
                client.post("/predict", json=EXAMPLE_CUSTOMER)
                answered.append(1)
            except httpx.HTTPError:
                time.sleep(0.05)


def test_killed_worker_keeps_counters_monotonic_and_gauges_live(
    trained_home: Path, tmp_path: Path, stop_afterwards: list[BentoServer]
) -> None:
    server = start_bento_server(trained_home, tmp_path / "serve")
    stop_afterwards.append(server)
    victim = worker_pids(server.pid)[ENTRY_SERVICE][0]
    stop, answered = threading.Event(), list[int]()
    loaders = [
        threading.Thread(target=_load, args=(server.url, stop, answered))
        for _ in range(3)
    ]
    for thread in loaders:
        thread.start()
    scrapes = []
    try:
        assert _eventually(lambda: len(answered) >= 30, 60)
        scrapes.append(_scrape(server.url))
        os.kill(victim, signal.SIGKILL)
        for _ in range(4):
            time.sleep(0.5)
            scrapes.append(_scrape(server.url))

        def restarted() -> bool:
            entry = worker_pids(server.pid).get(ENTRY_SERVICE, [])
            return len(entry) == 2 and victim not in entry

        assert _eventually(restarted, 60), worker_pids(server.pid)
        scrapes.append(_scrape(server.url))
    finally:
        stop.set()
        for thread in loaders:
            thread.join(timeout=60)

    for (earlier, kinds), (later, _) in itertools.pairwise(scrapes):
        previous = _counter_like(earlier, kinds)
        went_down = {
            key: (value, later[key])
            for key, value in previous.items()
            if key in later and later[key] < value
        }
        assert not went_down, f"counters decreased after a worker died: {went_down}"
        lost = set(previous) - set(later)
        assert not lost, f"counter series vanished: {sorted(lost)[:5]}"

    live = {pid for pids in worker_pids(server.pid).values() for pid in pids}

    def gauges_are_live() -> bool:
        samples, _ = _scrape(server.url)
        writers = samples.get(("churn_ab_metrics_writers", ()), 0.0)
        stamp_pids = {
            int(dict(labels)["pid"])
            for name, labels in samples
            if name == "bentoml_service_last_request_timestamp_seconds"
        }
        return writers == len(live) and stamp_pids <= live

    assert _eventually(gauges_are_live, CHECK_WAIT_S), _scrape(server.url)[0]


def test_wiped_metrics_directory_is_reported_not_silent(
    trained_home: Path, tmp_path: Path, stop_afterwards: list[BentoServer]
) -> None:
    server = start_bento_server(trained_home, tmp_path / "serve")
    stop_afterwards.append(server)
    _predict(server.url, 2)
    assert httpx.get(f"{server.url}/health").json()["metrics"] == "ok"

    # Readiness means one entry worker answers; each other worker counts
    # itself as a writer when its service finishes __init__, which can come
    # later on a busy machine. Wait for every worker, bounded, then compare.
    def every_worker_writes() -> bool:
        samples, _ = _scrape(server.url)
        return (
            samples[("churn_ab_metrics_writers", ())]
            == samples[("churn_ab_metrics_expected_writers", ())]
        )

    assert _eventually(every_worker_writes, CHECK_WAIT_S), _scrape(server.url)[0]
    samples, _ = _scrape(server.url)
    assert samples[("churn_ab_metrics_self_check", ())] == 1.0

    # What BentoML's ensure_prometheus_dir does to a directory it starts on.
    (directory,) = (Path(server.env["BENTOML_HOME"]) / INSTANCES_DIR).iterdir()
    shutil.rmtree(directory)
    directory.mkdir()

    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "healthy"
    assert health["metrics"] == "degraded"
    assert "was removed" in health["metrics_reason"]
    samples, _ = _scrape(server.url)
    assert samples[("churn_ab_metrics_self_check", ())] == 0.0

    entry = worker_pids(server.pid)[ENTRY_SERVICE]

    def every_worker_logged_once() -> bool:
        lines = [
            line for line in server.log().splitlines() if "metrics degraded" in line
        ]
        logged = [p for p in entry if any(f"worker {p}:" in ln for ln in lines)]
        return len(logged) == len(entry)

    assert _eventually(every_worker_logged_once, CHECK_WAIT_S), server.log()[-3000:]
    time.sleep(6)  # one more check round: still one line per worker
    lines = [ln for ln in server.log().splitlines() if "metrics degraded" in ln]
    for pid in entry:
        assert sum(f"worker {pid}:" in line for line in lines) == 1, lines
