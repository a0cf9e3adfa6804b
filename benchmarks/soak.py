"""Bounded Locust runs with memory sampling: ``make loadtest`` and ``make soak``.

``python -m benchmarks.soak --run-time 10m`` starts the Bento (full models)
unless ``--host``/``--server-pid`` name a running one, runs
``benchmarks/locustfile.py`` headless at a fixed offered load (default: half
the c=16 capacity in the latest ``benchmarks/results/*.json``), samples the
RSS of every server process meanwhile, and writes Locust's CSV/HTML reports
plus a summary (errors, latency, RSS growth per process) to
``benchmarks/results/``. Exits 1 when any request failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.machine import describe, describe_markdown
from benchmarks.procs import tree_memory
from benchmarks.servers import REPO_ROOT, VENV_BIN, Server, start_bento

LOCUSTFILE = REPO_ROOT / "benchmarks" / "locustfile.py"
RESULTS = REPO_ROOT / "benchmarks" / "results"
DEFAULT_HOME = Path(os.environ.get("BENTOML_HOME", "/tmp/bench-bentoml"))
FALLBACK_RPS = 40.0
TASK_NAMES = ("/predict", "/health", "/ab-test/stats", "/models")


def parse_duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip()
    if text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def measured_capacity(results: Path = RESULTS) -> float | None:
    """c=16 req/s of the Bento in the newest side-by-side result, if any."""
    for path in sorted(results.glob("*.json"), reverse=True):
        try:
            summary = json.loads(path.read_text()).get("summary", {})
        except (OSError, json.JSONDecodeError):
            continue
        row = summary.get("bento@16")
        if row:
            return float(row["rps"])
    return None


@dataclass
class RssSample:
    t_s: float
    per_process_mb: dict[str, float]
    total_mb: float


class Sampler(threading.Thread):
    def __init__(self, pid: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every_s = every_s
        self.samples: list[RssSample] = []
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def sample(self) -> None:
        memory = tree_memory(self.pid)
        per = {f"{m.name} [{m.pid}]": m.rss_kb / 1024 for m in memory}
        self.samples.append(
            RssSample(
                round(time.monotonic() - self._t0, 1),
                per,
                sum(per.values()),
            )
        )

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.every_s)

    def finish(self) -> list[RssSample]:
        self._done.set()
        self.join()
        self.sample()
        return self.samples


def read_stats(prefix: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "p50_ms": float(row["50%"] or 0),
                "p99_ms": float(row["99%"] or 0),
                "rps": float(row["Requests/s"] or 0),
            }
    return rows


def read_failures(prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def growth(samples: list[RssSample], warmup_share: float = 0.1) -> dict[str, Any]:
    """RSS growth per process from the first sample after warm-up to the last."""
    if len(samples) < 2:
        return {"per_process_mb": {}, "total_mb": 0.0, "per_hour_mb": 0.0}
    start_index = min(len(samples) - 2, int(len(samples) * warmup_share))
    first, last = samples[start_index], samples[-1]
    per = {
        name: round(last.per_process_mb.get(name, 0.0) - value, 1)
        for name, value in first.per_process_mb.items()
    }
    hours = max(1e-9, (last.t_s - first.t_s) / 3600)
    total = last.total_mb - first.total_mb
    return {
        "from_s": first.t_s,
        "to_s": last.t_s,
        "per_process_mb": per,
        "total_mb": round(total, 1),
        "per_hour_mb": round(total / hours, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    run_time = parse_duration(args.run_time)
    capacity = measured_capacity()
    target_rps = args.target_rps or (capacity / 2 if capacity else FALLBACK_RPS)
    rate = args.rate or target_rps / args.users
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / f"{stamp}-{args.label}"
    server: Server | None = None
    host, pid = args.host, args.server_pid
    if host is None:
        workdir = Path(tempfile.mkdtemp(prefix="churn-soak-"))
        server = start_bento(args.label, args.bentoml_home, workdir)
        host, pid = server.url, server.pid
    assert pid is not None, "--server-pid is required with --host"
    sampler = Sampler(pid, args.sample_every)
    command = [str(VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless"]
    command += ["-u", str(args.users), "-r", str(args.users), "-H", host]
    command += ["--run-time", f"{run_time:g}s", "--stop-timeout", "5"]
    command += ["--csv", str(prefix), "--csv-full-history", "--html", f"{prefix}.html"]
    command += ["--only-summary", "--loglevel", "WARNING"]
    env = {
        **os.environ,
        "CHURN_LOCUST_RATE": f"{rate:g}",
        "PYTHONPATH": str(REPO_ROOT),
    }
    try:
        sampler.start()
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=run_time + 120,
        )
        samples = sampler.finish()
    finally:
        if server is not None:
            server.stop()
    stats = read_stats(prefix)
    total = stats.get("Aggregated", {"requests": 0, "failures": 0})
    report = {
        "stamp": stamp,
        "label": args.label,
        "machine": describe(),
        "host": host,
        "run_time_s": run_time,
        "users": args.users,
        "rate_per_user": rate,
        "offered_rps": rate * args.users,
        "capacity_rps_used": capacity,
        "locust_exit": done.returncode,
        "stats": stats,
        "failures": read_failures(prefix),
        "requests": total["requests"],
        "errors": total["failures"],
        "task_counts": {n: stats.get(n, {}).get("requests", 0) for n in TASK_NAMES},
        "rss_samples": [asdict(s) for s in samples],
        "rss_growth": growth(samples),
        "locust_stderr_tail": done.stderr[-2000:],
    }
    Path(f"{prefix}-summary.json").write_text(json.dumps(report, indent=1) + "\n")
    Path(f"{prefix}-summary.md").write_text(render(report))
    report["summary_path"] = f"{prefix}-summary.md"
    return report


def render(report: dict[str, Any]) -> str:
    g = report["rss_growth"]
    lines = [
        f"# {report['label']} {report['stamp']}",
        "",
        f"Machine: {describe_markdown(report['machine'])}; "
        f"load average {report['machine']['load_average']}.",
        f"{report['users']} Locust users × {report['rate_per_user']:.2f} tasks/s "
        f"= {report['offered_rps']:.1f} offered req/s for {report['run_time_s']:g} s "
        f"(capacity used for pacing: {report['capacity_rps_used']}).",
        "",
        f"Requests {report['requests']}, errors {report['errors']}.",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in report["stats"].items():
        lines.append(
            f"| {name} | {row['requests']} | {row['failures']} | {row['rps']:.1f} "
            f"| {row['p50_ms']:.0f} | {row['p99_ms']:.0f} |"
        )
    lines += [
        "",
        f"RSS growth from {g.get('from_s', 0)} s to {g.get('to_s', 0)} s: "
        f"{g['total_mb']:+.1f} MB in total ({g['per_hour_mb']:+.1f} MB/h).",
        "",
        "| process | growth MB |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:+.1f} |" for k, v in g["per_process_mb"].items()]
    samples = report["rss_samples"]
    lines += ["", "| t (s) | total RSS MB |", "|---:|---:|"]
    step = max(1, len(samples) // 12)
    lines += [f"| {s['t_s']} | {s['total_mb']:.0f} |" for s in samples[::step]]
    if report["failures"]:
        lines += ["", "Failures:", ""]
        lines += [
            f"- {f.get('Method')} {f.get('Name')}: {f.get('Error')} "
            f"× {f.get('Occurrences')}"
            for f in report["failures"][:10]
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-time", default="10m", help="e.g. 60s, 10m")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0, help="tasks/s per user")
    parser.add_argument("--target-rps", type=float, default=0.0)
    parser.add_argument("--sample-every", type=float, default=5.0, help="s")
    parser.add_argument("--host", default=None)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--label", default="soak")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--bentoml-home", type=Path, default=DEFAULT_HOME)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    report = run(parse_args(argv))
    print(Path(report["summary_path"]).read_text())
    print(f"written {report['summary_path']}")
    return 1 if report["errors"] or report["locust_exit"] not in (0, 1) else 0


if __name__ == "__main__":
    raise SystemExit(main())
