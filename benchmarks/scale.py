"""``make bench-scale``: the live statistics and /predict at ledger scale (#12).

For each size (SQLite, and one size on PostgreSQL) the benchmark fills a
ledger with that many exposures of one epoch, 30 % labelled
(:mod:`benchmarks.scale_fill`: rows and rollups in bulk, then checked with
``python -m ab_router rollups --verify``), and measures:

- bytes per exposure: the ledger file's growth over an empty ledger
  (SQLite, after a WAL checkpoint; PostgreSQL: ``pg_database_size``);
- snapshot time: a fresh ``LiveStatistics.snapshot()`` (what
  ``/ab-test/stats``, ``/metrics``, the canary and the page read), in the
  process, median and worst of several fresh ones;
- ``/predict`` throughput at c=16 (wrk, rotating customers) of a real
  ``bentoml serve`` on that ledger, against the same server on an empty one
  (run before and after the others; the ratio uses their mean);
- at the largest size: ``/ab-test/stats`` and ``/metrics`` latency while
  wrk drives ``/predict`` at c=16 (p50/p99 of sequential polls).

It prints a table with each target of the issue met or not, and writes it
with the raw numbers to ``benchmarks/results/<stamp>-scale.md`` / ``.json``.
Targets are reported, never asserted: timing on a shared machine is noise
for a test, and a figure for a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from ab_router.ledger import Ledger
from ab_router.ledger.sqlite import SqliteLedger
from benchmarks.customers import make_customers
from benchmarks.machine import describe, describe_markdown
from benchmarks.run import DEFAULT_HOME, RESULTS, ensure_models, run_wrk
from benchmarks.scale_fill import fill
from benchmarks.servers import REPO_ROOT, start_bento
from serving.live_statistics import LiveStatistics
from serving.settings import load_settings
from serving.state_cache import StateCache

TARGET_SNAPSHOT_MS = 20.0
TARGET_PREDICT_RATIO = 0.9
TARGET_BYTES = 200.0
TARGET_P99_MS = 50.0
FLOOR_PATH = "/health"  # polled beside the stats reads as their floor


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--pg-size", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--labelled", type=float, default=0.3)
    parser.add_argument("--duration", type=float, default=10.0, help="s per wrk run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--snapshots", type=int, default=7, help="fresh ones/size")
    parser.add_argument(
        "--verify-up-to", type=int, default=1_000_000,
        help="run rollups --verify on ledgers up to this size (it reads every row)",
    )  # fmt: skip
    parser.add_argument("--bentoml-home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="scale")
    parser.add_argument(
        "--keep", type=Path, default=None,
        help="build the SQLite ledgers in this directory, keep them, and reuse "
        "one already there with the right number of exposures",
    )  # fmt: skip
    parser.add_argument(
        "--fill-only", action="store_true",
        help="build the ledgers (with --keep) and measure them in-process only",
    )  # fmt: skip
    return parser.parse_args(argv)


def snapshot_ms(ledger: Ledger, repeats: int) -> dict[str, Any]:
    """Fresh snapshots (no cache), in this process: median and worst, ms."""
    settings = load_settings()
    state = ledger.ensure_experiment(settings.experiment)
    decision = settings.experiment_settings.decision_config()
    times, cpu = [], []
    for _ in range(repeats):
        live = LiveStatistics(ledger, StateCache(ledger, state, 0.0), decision)
        started, started_cpu = time.perf_counter(), time.thread_time()
        live.snapshot()
        times.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.thread_time() - started_cpu))
    return {
        "median": statistics.median(times),
        "max": max(times),
        "cpu_median": statistics.median(cpu),
        "all": times,
        "cpu_all": cpu,
        "load1": os.getloadavg()[0],
    }


def sqlite_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def verify(url_or_path: str) -> tuple[bool, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ab_router", "rollups", "--ledger", url_or_path,
         "--verify"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=7200,
    )  # fmt: skip
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
    return done.returncode == 0, time.monotonic() - started


class Poller(threading.Thread):
    """Sequential GETs of one path while the load runs; latencies in ms."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ms: list[float] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._halt.is_set():
                started = time.perf_counter()
                ok = client.get(self.url).status_code == 200
                self.ms.append(1000 * (time.perf_counter() - started))
                self.errors += not ok
                self._halt.wait(0.05)

    def finish(self) -> dict[str, float]:
        self._halt.set()
        self.join()
        ordered = sorted(self.ms)
        return {
            "n": len(ordered),
            "p50": ordered[len(ordered) // 2] if ordered else float("nan"),
            "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
            if ordered
            else float("nan"),
            "errors": self.errors,
        }


def serve_and_load(
    name: str,
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
    bodies: Path,
    *,
    poll: bool,
) -> dict[str, Any]:
    server = start_bento(name, args.bentoml_home, workdir, env=env)
    try:
        run_wrk(server.url, bodies, 16, args.warmup)
        result = run_wrk(server.url, bodies, 16, args.duration)
        out: dict[str, Any] = {
            "rps": result["requests"] / (result["duration_us"] / 1e6),
            "non_2xx": result["status"],
        }
        if poll:
            # /health is the floor: polled the same way under the same load, it
            # shows how much of a stats read's latency is queueing behind /predict.
            pollers = {
                p: Poller(server.url + p)
                for p in (FLOOR_PATH, "/ab-test/stats", "/metrics")
            }
            for p in pollers.values():
                p.start()
            loaded = run_wrk(server.url, bodies, 16, args.duration)
            out["under_load"] = {k: p.finish() for k, p in pollers.items()}
            out["rps_while_polled"] = loaded["requests"] / (loaded["duration_us"] / 1e6)
        stats = httpx.get(server.url + "/ab-test/stats", timeout=60).json()
        out["total_requests"] = stats["total_requests"]
        return out
    finally:
        server.stop()


def sqlite_case(
    n: int, args: argparse.Namespace, workdir: Path, empty_bytes: int
) -> dict[str, Any]:
    path = ledger_path(args, workdir, n)
    ledger = SqliteLedger(path)
    config = load_settings().experiment
    state = ledger.ensure_experiment(config)
    built = ledger.epoch_rollup(config.name, state.epoch).exposures
    if built == n:
        print(f"reusing {path} ({n:,} exposures)", flush=True)
        fill_s = float("nan")
    else:
        if built:
            raise SystemExit(f"{path} holds {built:,} exposures, not {n:,}")
        print(f"filling {n:,} exposures (SQLite) ...", flush=True)
        fill_s = fill(ledger, config, n, labelled=args.labelled)
    case: dict[str, Any] = {"backend": "sqlite", "exposures": n, "fill_s": fill_s}
    case["snapshot_ms"] = snapshot_ms(ledger, args.snapshots)
    ledger.close()
    case["bytes_per_exposure"] = (sqlite_bytes(path) - empty_bytes) / n
    if n <= args.verify_up_to:
        case["verified"], case["verify_s"] = verify(str(path))
    print(f"  {json.dumps({k: v for k, v in case.items() if k != 'snapshot_ms'})}")
    print(f"  snapshot median {case['snapshot_ms']['median']:.1f} ms", flush=True)
    return case


def ledger_path(args: argparse.Namespace, workdir: Path, n: int) -> Path:
    directory = args.keep or workdir
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"ledger-{n}.sqlite3"


def postgres_case(
    n: int, args: argparse.Namespace, workdir: Path, bodies: Path
) -> dict[str, Any]:
    from ab_router.ledger.postgres import PostgresLedger
    from harness.postgres_server import PostgresServer

    pg = PostgresServer().start()
    try:
        url = pg.create_database("bench")
        ledger = PostgresLedger(url)
        empty = _pg_bytes(ledger)
        print(f"filling {n:,} exposures (PostgreSQL) ...", flush=True)
        fill_s = fill(ledger, load_settings().experiment, n, labelled=args.labelled)
        case: dict[str, Any] = {"backend": "postgres", "exposures": n, "fill_s": fill_s}
        case["snapshot_ms"] = snapshot_ms(ledger, args.snapshots)
        case["bytes_per_exposure"] = (_pg_bytes(ledger) - empty) / n
        ledger.close()
        if n <= args.verify_up_to:
            case["verified"], case["verify_s"] = verify(url)
        case["serve"] = serve_and_load(
            "pg", {"CHURN_AB_LEDGER_URL": url}, args, workdir, bodies, poll=False
        )
        return case
    finally:
        pg.stop()


def _pg_bytes(ledger: Any) -> int:
    rows = ledger._read("SELECT pg_database_size(current_database())")
    return int(rows[0][0])


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(report: dict[str, Any]) -> str:
    cases = report["cases"]
    empty = report["empty_rps"]
    base = statistics.mean(empty) if empty else float("nan")
    lines = [
        f"# Scale benchmark ({report['stamp']})",
        "",
        describe_markdown(report["machine"]),
        "",
        f"Exposures of one epoch, {report['labelled']:.0%} labelled; wrk -t1 "
        f"c=16 {report['duration']:g} s per run; /predict on an empty ledger: "
        + ", ".join(f"{r:.0f}" for r in empty)
        + f" req/s (mean {base:.0f}).",
        "",
        "| backend | exposures | fill s | rollups verified | bytes/exposure | "
        "snapshot median ms | snapshot CPU ms | snapshot max ms | load1 | "
        "/predict req/s | vs empty |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        rps = c.get("serve", {}).get("rps")
        snap = c["snapshot_ms"]
        lines.append(
            f"| {c['backend']} | {c['exposures']:,} | {_fill(c['fill_s'])} | "
            f"{_verified(c)} | {c['bytes_per_exposure']:.0f} | "
            f"{snap['median']:.1f} | {snap['cpu_median']:.1f} | "
            f"{snap['max']:.1f} | {snap['load1']:.1f} | "
            + (f"{rps:.0f} | {rps / base:.2f} |" if rps else "— | — |")
        )
    lines += ["", *_targets(report, base), ""]
    return "\n".join(lines)


def _fill(seconds: float) -> str:
    return "reused" if seconds != seconds else f"{seconds:.0f}"  # NaN: reused


def _verified(c: dict[str, Any]) -> str:
    if "verified" not in c:
        return "not run (size)"
    return ("yes" if c["verified"] else "**NO**") + f" ({c['verify_s']:.0f} s)"


def _targets(report: dict[str, Any], base: float) -> list[str]:
    sqlite = [c for c in report["cases"] if c["backend"] == "sqlite"]
    largest = max(sqlite, key=lambda c: c["exposures"])
    snapshots = [c["snapshot_ms"]["median"] for c in report["cases"]]
    cpu = [c["snapshot_ms"]["cpu_median"] for c in report["cases"]]
    flat = max(snapshots) <= 2 * min(snapshots) + 2.0
    ratio = largest["serve"]["rps"] / base
    worst_bytes = max(c["bytes_per_exposure"] for c in sqlite)
    polled = largest["serve"]["under_load"]
    load = {k: v for k, v in polled.items() if k != FLOOR_PATH}
    p99 = max(v["p99"] for v in load.values())
    floor = polled.get(FLOOR_PATH)
    size = f"{largest['exposures']:,}"
    return [
        "| target (issue #12) | measured | |",
        "|---|---|---|",
        f"| snapshot ≤ {TARGET_SNAPSHOT_MS:g} ms at every size, flat | "
        f"{min(snapshots):.1f}–{max(snapshots):.1f} ms wall, "
        f"{min(cpu):.1f}–{max(cpu):.1f} ms CPU | "
        f"{_mark(max(snapshots) <= TARGET_SNAPSHOT_MS and flat)} (wall) |",
        f"| /predict at the largest size ({size}) ≥ {TARGET_PREDICT_RATIO}× empty"
        f" | {ratio:.2f}× | {_mark(ratio >= TARGET_PREDICT_RATIO)} |",
        f"| ≤ {TARGET_BYTES:g} bytes per exposure (SQLite) | {worst_bytes:.0f} | "
        f"{_mark(worst_bytes <= TARGET_BYTES)} |",
        f"| /ab-test/stats and /metrics p99 ≤ {TARGET_P99_MS:g} ms under c=16 "
        f"/predict at {size} | "
        + ", ".join(
            f"{k} p50 {v['p50']:.1f} / p99 {v['p99']:.1f} ms (n={v['n']})"
            for k, v in load.items()
        )
        + (
            f"; floor {FLOOR_PATH} p50 {floor['p50']:.1f} / p99 {floor['p99']:.1f} ms"
            f" ({p99 / max(floor['p99'], 1e-9):.2f}× its p99)"
            if floor
            else ""
        )
        + f" | {_mark(p99 <= TARGET_P99_MS)} |",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    ensure_models(args.bentoml_home)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        bodies = workdir / "bodies.jsonl"
        bodies.write_text(
            "\n".join(json.dumps(c) for c in make_customers(2_000)) + "\n"
        )
        empty_path = workdir / "ledger-empty.sqlite3"
        SqliteLedger(empty_path).ensure_experiment(load_settings().experiment)
        empty_bytes = sqlite_bytes(empty_path)
        cases = [sqlite_case(n, args, workdir, empty_bytes) for n in sizes]
        if args.fill_only:
            print(json.dumps(cases, indent=1, default=str))
            return 0
        largest = max(sizes)
        empty_rps = []
        print("serving the empty ledger ...", flush=True)
        empty_rps.append(
            serve_and_load(
                "empty", {"CHURN_AB_LEDGER_PATH": str(empty_path)}, args, workdir,
                bodies, poll=False,
            )["rps"]
        )  # fmt: skip
        for case in cases:
            n = case["exposures"]
            print(f"serving {n:,} ...", flush=True)
            case["serve"] = serve_and_load(
                f"s{n}",
                {"CHURN_AB_LEDGER_PATH": str(ledger_path(args, workdir, n))},
                args, workdir, bodies, poll=n == largest,
            )  # fmt: skip
        print("serving the empty ledger again ...", flush=True)
        empty_rps.append(
            serve_and_load(
                "empty2", {"CHURN_AB_LEDGER_PATH": str(empty_path)}, args, workdir,
                bodies, poll=False,
            )["rps"]
        )  # fmt: skip
        if args.pg_size:
            cases.append(postgres_case(args.pg_size, args, workdir, bodies))
        report = {
            "stamp": stamp,
            "machine": describe(),
            "labelled": args.labelled,
            "duration": args.duration,
            "load1_at_end": os.getloadavg()[0],
            "empty_rps": empty_rps,
            "cases": cases,
        }
        text = render(report)
        print(text)
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"{stamp}-{args.label}"
        (args.out / f"{name}.md").write_text(text + "\n", encoding="utf-8")
        (args.out / f"{name}.json").write_text(
            json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8"
        )
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
