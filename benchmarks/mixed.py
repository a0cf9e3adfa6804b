"""The mixed scenario of ``make bench``: online latency next to batch traffic.

Issue #17: a batch job must not slow ``/predict`` down. For one server it
measures ``/predict`` with wrk at each concurrency

1. **alone** (before any batch traffic reached the server),
2. **during**: while a client posts ``/predict_batch`` jobs back to back,
3. **after**: right after a burst of ``burst_rows`` batch rows,

and reports the ratios the issue set targets for. Reported, never asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.servers import Server

PHASES = ("alone", "during", "after")

# The targets (same run, same server).
AFTER_P50_RATIO = 1.2  # c=1 p50 right after the burst / alone
DURING_P99_RATIO = 2.0  # c=16 p99 while a batch job runs / alone
BATCH_US_PER_ROW = 45.6  # /predict_batch, no worse than before the fix
BASELINE = "baseline"  # the code before the fix, when the run serves it

WrkRun = Callable[[Server, int], dict[str, Any]]


class BatchJobs(threading.Thread):
    """Posts the same batch back to back until stopped; times each post."""

    def __init__(self, server: Server, body: bytes, rows: int) -> None:
        super().__init__(daemon=True)
        self.server, self.body, self.rows = server, body, rows
        self.seconds: list[float] = []
        self.failures = 0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=300) as client:
            while not self._done.is_set():
                self.seconds.append(_post(client, self.server, self.body, self.rows))
                if self.seconds[-1] < 0:
                    self.failures += 1

    def finish(self) -> None:
        self._done.set()
        self.join()


def _post(client: httpx.Client, server: Server, body: bytes, rows: int) -> float:
    """Seconds one batch took, negative when it was not a full 200."""
    started = time.perf_counter()
    response = client.post(
        server.url + "/predict_batch",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    took = time.perf_counter() - started
    ok = response.status_code == 200 and response.json().get("count") == rows
    return took if ok else -took


def run_mixed(
    server: Server,
    wrk: WrkRun,
    concurrency: list[int],
    batch_body: bytes,
    batch_rows: int,
    burst_rows: int,
) -> dict[str, Any]:
    """wrk runs per phase and concurrency, and the batch posts' timings."""
    phases: dict[str, dict[int, dict[str, Any]]] = {p: {} for p in PHASES}
    for c in concurrency:
        phases["alone"][c] = wrk(server, c)
    jobs = BatchJobs(server, batch_body, batch_rows)
    jobs.start()
    try:
        for c in concurrency:
            phases["during"][c] = wrk(server, c)
    finally:
        jobs.finish()
    burst: list[float] = []
    with httpx.Client(timeout=300) as client:
        for _ in range(max(1, burst_rows // batch_rows)):
            burst.append(_post(client, server, batch_body, batch_rows))
    for c in concurrency:
        phases["after"][c] = wrk(server, c)
    return {
        "phases": phases,
        "during_batches": jobs.seconds,
        "burst_batches": burst,
        "batch_rows": batch_rows,
        "burst_rows": len(burst) * batch_rows,
    }


def _ms(run: dict[str, Any], key: str) -> float:
    return float(run[key]) / 1000.0


def render_mixed(mixed: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: each phase's p50/p99 and their ratios to alone."""
    lines = [
        "| server | conc | phase | req/s | p50 ms | p99 ms | p50 × alone "
        "| p99 × alone | non-2xx |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in mixed.items():
        phases = result["phases"]
        for c in sorted(phases["alone"]):
            alone = phases["alone"][c]
            for phase in PHASES:
                run = phases[phase][c]
                lines.append(
                    f"| {name} | {c} | {phase} | {run['rps']:,.0f} "
                    f"| {_ms(run, 'p50_us'):.2f} | {_ms(run, 'p99_us'):.2f} "
                    f"| {run['p50_us'] / alone['p50_us']:.2f}× "
                    f"| {run['p99_us'] / alone['p99_us']:.2f}× "
                    f"| {run['non_2xx'] + run['socket_errors']} |"
                )
        during = [s for s in result["during_batches"] if s > 0]
        burst = [s for s in result["burst_batches"] if s > 0]
        rows = result["batch_rows"]
        failed = len(result["during_batches"]) + len(result["burst_batches"])
        failed -= len(during) + len(burst)
        lines.append(
            f"| {name} | | batches | {len(during)} during "
            f"({_per_row(during, rows)} µs/row), burst of "
            f"{result['burst_rows']:,} rows in {sum(burst):.1f} s "
            f"({_per_row(burst, rows)} µs/row), {failed} failed | | | | | |"
        )
    return lines


def _per_row(seconds: list[float], rows: int) -> str:
    if not seconds:
        return "–"
    ordered = sorted(seconds)
    return f"{ordered[len(ordered) // 2] * 1e6 / rows:.1f}"


def check_mixed(
    mixed: dict[str, dict[str, Any]], batch: dict[str, dict[str, Any]]
) -> list[str]:
    """The issue #17 targets, met or not, per churn-ab server of the run."""
    out = []
    for name, result in mixed.items():
        phases = result["phases"]
        lo, hi = min(phases["alone"]), max(phases["alone"])
        ratio = phases["after"][lo]["p50_us"] / phases["alone"][lo]["p50_us"]
        out.append(
            f"{name}: c={lo} p50 right after {result['burst_rows']:,} batch rows "
            f"{ratio:.2f}× alone (target ≤ {AFTER_P50_RATIO}×): "
            + ("met" if ratio <= AFTER_P50_RATIO else "NOT met")
        )
        ratio = phases["during"][hi]["p99_us"] / phases["alone"][hi]["p99_us"]
        out.append(
            f"{name}: c={hi} p99 while batch jobs run {ratio:.2f}× alone "
            f"(target ≤ {DURING_P99_RATIO}×): "
            + ("met" if ratio <= DURING_P99_RATIO else "NOT met")
        )
        errors = sum(
            run["non_2xx"] + run["socket_errors"]
            for runs in phases.values()
            for run in runs.values()
        )
        failed = sum(s < 0 for s in result["during_batches"] + result["burst_batches"])
        verdict = "met" if errors + failed == 0 else "NOT met"
        out.append(
            f"{name}: mixed scenario non-2xx {errors} /predict, {failed} "
            f"/predict_batch (target 0): {verdict}"
        )
        if name in batch and name != BASELINE:
            out.append(_batch_target(name, batch))
    return out


def _batch_target(name: str, batch: dict[str, dict[str, Any]]) -> str:
    """µs/row no worse than before the fix: than the baseline of the same run
    when there is one (the issue's 45.6 was a quiet machine's), else 45.6."""
    us = batch[name]["us_per_row"]
    if BASELINE in batch:
        limit, against = batch[BASELINE]["us_per_row"], "the baseline's"
    else:
        limit, against = BATCH_US_PER_ROW, "the issue's"
    verdict = "met" if us <= limit else "NOT met"
    return (
        f"{name}: /predict_batch {us:.1f} µs/row (target ≤ {limit:.1f}, "
        f"{against}, #17): {verdict}"
    )
