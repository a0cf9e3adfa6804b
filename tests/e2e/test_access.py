"""API keys and rate limits against a real server with two entry workers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ab_router.api_keys import add_key, remove_key
from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import BentoServer, start_bento_server
from tests.support.faults import ledger_counts, metric_sum, worker_pids

RATE, BURST = 10.0, 10.0  # rows per second and bucket, per key, per instance
LOAD_S = 4.0


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "api-keys"


@pytest.fixture(scope="module")
def keys(keys_file: Path) -> dict[str, str]:
    made = {name: add_key(keys_file, name, rate=RATE, burst=BURST) for name in "abc"}
    made["batcher"] = add_key(keys_file, "batcher", rate=1, burst=20)
    made["unlimited"] = add_key(keys_file, "unlimited")
    return made


@pytest.fixture(scope="module")
def keyed_server(
    trained_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
    keys_file: Path,
    keys: dict[str, str],
) -> Iterator[BentoServer]:
    server = start_bento_server(
        trained_home,
        tmp_path_factory.mktemp("keyed"),
        env={"CHURN_AB_API_KEYS_FILE": str(keys_file)},
    )
    try:
        yield server
    finally:
        leftover = server.stop()
    assert not leftover, leftover


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_missing_and_unknown_keys_get_401_valid_ones_200(
    keyed_server: BentoServer, keys: dict[str, str]
) -> None:
    url = f"{keyed_server.url}/predict"
    for headers in ({}, _auth("cak_not-a-key"), {"Authorization": keys["a"]}):
        refused = httpx.post(url, json=EXAMPLE_CUSTOMER, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"
    ok = httpx.post(url, json=EXAMPLE_CUSTOMER, headers=_auth(keys["unlimited"]))
    assert ok.status_code == 200, ok.text
    assert httpx.get(f"{keyed_server.url}/health").status_code == 200  # not guarded
    assert keys["a"] not in keyed_server.log()


def _hammer(
    url: str, key: str, stop: threading.Event, seen: Counter[int], lock: threading.Lock
) -> None:
    with httpx.Client(base_url=url, timeout=10, headers=_auth(key)) as client:
        for _ in range(2000):  # bounded even if never told to stop
            if stop.is_set():
                return
            response = client.post("/predict", json=EXAMPLE_CUSTOMER)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["code"] == "rate_limited"
            with lock:
                seen[response.status_code] += 1


def test_limits_hold_per_key_under_concurrent_load_and_429_is_not_recorded(
    keyed_server: BentoServer, keys: dict[str, str]
) -> None:
    names = ["a", "b", "c", "unlimited"]
    seen = {name: Counter[int]() for name in names}
    lock, stop = threading.Lock(), threading.Event()
    threads = [
        threading.Thread(
            target=_hammer, args=(keyed_server.url, keys[n], stop, seen[n], lock)
        )
        for n in names
        for _ in range(3)
    ]
    exposures_before = ledger_counts(keyed_server.ledger_path).exposures
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(LOAD_S)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    for name in "abc":
        admitted, limited = seen[name][200], seen[name][429]
        assert set(seen[name]) <= {200, 429}, seen[name]
        # The hard bound; concentrating on one worker can only lower it.
        assert admitted <= RATE * elapsed + BURST, (name, seen[name], elapsed)
        assert admitted >= 0.25 * RATE * LOAD_S, (name, seen[name])
        assert limited > 0, seen[name]
    assert set(seen["unlimited"]) == {200}, seen["unlimited"]

    answered = sum(counts[200] for counts in seen.values())
    exposures = ledger_counts(keyed_server.ledger_path).exposures - exposures_before
    assert exposures == answered  # not one 429 became an exposure
    text = httpx.get(f"{keyed_server.url}/metrics").text
    for name in "abc":
        assert metric_sum(text, "churn_ab_rate_limited_total", key=name) == float(
            seen[name][429]
        )
    assert metric_sum(text, "churn_ab_rate_limited_total", key="unlimited") == 0


def test_a_batch_costs_its_rows(
    keyed_server: BentoServer, keys: dict[str, str]
) -> None:
    url = f"{keyed_server.url}/predict_batch"
    headers = _auth(keys["batcher"])  # 1 row/s, burst 20: 10 rows per worker
    too_big = httpx.post(
        url, json={"customers": [EXAMPLE_CUSTOMER] * 11}, headers=headers
    )
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["error"]["field"] == "customers"
    statuses = [
        httpx.post(
            url, json={"customers": [EXAMPLE_CUSTOMER] * 10}, headers=headers
        ).status_code
        for _ in range(3)
    ]
    # Each worker's bucket holds one batch of 10; refilling takes 20 s.
    assert statuses.count(200) <= 2 and 429 in statuses, statuses


def test_keys_rotate_without_a_restart(
    keyed_server: BentoServer, keys_file: Path, keys: dict[str, str]
) -> None:
    workers = worker_pids(keyed_server.pid)
    url = f"{keyed_server.url}/predict"
    new_key = add_key(keys_file, "rotated")
    remove_key(keys_file, "c")

    def answers(key: str) -> int:
        return httpx.post(url, json=EXAMPLE_CUSTOMER, headers=_auth(key)).status_code

    deadline = time.monotonic() + 10
    # Both workers must see the change: ask several times each round.
    while time.monotonic() < deadline:
        new_ok = all(answers(new_key) == 200 for _ in range(6))
        old_gone = all(answers(keys["c"]) == 401 for _ in range(6))
        if new_ok and old_gone:
            break
        time.sleep(0.5)
    assert new_ok and old_gone
    assert worker_pids(keyed_server.pid) == workers  # nothing restarted
    assert "rotated" in keyed_server.log()  # the reload logs key names


def test_an_open_service_says_so_loudly(bento_server: BentoServer) -> None:
    assert "API keys are OFF" in bento_server.log()
    assert httpx.post(f"{bento_server.url}/predict", json=EXAMPLE_CUSTOMER).is_success


@pytest.mark.parametrize("content", [None, "partner:not-hex:00\n"])
def test_a_missing_or_broken_key_file_stops_the_start_in_one_line(
    trained_home: Path, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "api-keys"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RuntimeError) as raised:
        server = start_bento_server(
            trained_home,
            tmp_path / "serve",
            env={"CHURN_AB_API_KEYS_FILE": str(path)},
            ready_timeout_s=30,
        )
        server.stop()  # started after all: do not leave it running
    message = str(raised.value)
    assert "(exit 2)" in message, message[-2000:]
    assert "churn-ab: invalid configuration: CHURN_AB_API_KEYS_FILE" in message
    assert "Traceback" not in message
