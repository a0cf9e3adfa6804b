"""Where a worker's time goes: py-spy every Bento worker under wrk load.

``python -m benchmarks.profile [--env K=V ...] [--seconds 15] [--concurrency 16]``
starts one ``bentoml serve`` (full models), drives ``/predict`` with wrk,
records each worker with ``py-spy record --format raw`` (collapsed stacks of
threads on CPU) and prints, per worker, its CPU use (samples / (seconds ×
rate)), the share of its CPU spent inside the functions that matter
(inclusive) and the top self-time frames, plus how many of wrk's connections
each worker holds. Raw stacks stay under ``benchmarks/results/profiles/``
for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.customers import make_customers
from benchmarks.run import DEFAULT_HOME, RESULTS, ensure_models, run_wrk
from benchmarks.servers import REPO_ROOT, start_bento

RATE = 250

# py-spy's idle detection misses these waits here, so they are dropped by
# their innermost frame: what is left is time on CPU.
IDLE_LEAVES = (
    "Condition.wait (threading.py",
    "EpollSelector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Event.wait (threading.py",
    "Thread._wait_for_tstate_lock (threading.py",
)

# Inclusive shares under frames that do not wrap the rest of the request
# (middleware frames do, so they are not listed). Substrings of
# "function (file:line)" frames, as py-spy prints them.
MARKERS = {
    "OpenTelemetry spans": ("Tracer.start_span", "Span.end", "Span.__exit__"),
    "output JSON schema rebuilt per response": ("IOMixin.mime_type",),
    "pydantic validation": ("validate_python", "validate_json", "model_validate"),
    "entry: predictor.predict (own code)": ("Predictor.predict (serving",),
    "entry: ledger record_exposures": ("record_exposures",),
    "entry→model client call": ("_bentoml_impl/client",),
    "serialization (serde)": ("serde.py",),
    "model: sklearn predict_proba": ("predict_proba (sklearn",),
    "model: joblib Parallel": ("joblib",),
    "model: FastEncoder.encode": ("encode (churn_features/encoding.py",),
    "model: flat trees": ("flat_trees.py",),
    "prometheus client": ("prometheus_client",),
    "ABC isinstance checks (GC runs inside)": (
        "__subclasscheck__",
        "__instancecheck__",
    ),
    "uvicorn/h11 HTTP parsing": ("h11/", "httptools"),
    "asyncio transport writes": ("_SelectorSocketTransport.write",),
}


def _connections_per_worker(port: int, pids: list[int]) -> dict[int, int]:
    """Established TCP connections on ``port`` held by each worker process."""
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {pid: listing.count(f"pid={pid},") for pid in pids}


def summarise(raw: Path, top: int = 12) -> dict[str, object]:
    total = 0
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith(IDLE_LEAVES):
            continue
        total += count
        for label, markers in MARKERS.items():
            if any(m in f for f in frames for m in markers):
                inclusive[label] += count
        leaf = frames[-1]
        # Trim the line number: group samples by function.
        self_time[leaf.rsplit(":", 1)[0]] += count
    return {
        "samples": total,
        "inclusive": {k: round(v / total, 3) for k, v in inclusive.most_common()}
        if total
        else {},
        "self_top": [(k, round(v / total, 3)) for k, v in self_time.most_common(top)]
        if total
        else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--label", default="bento")
    parser.add_argument("--bentoml-home", type=Path, default=DEFAULT_HOME)
    args = parser.parse_args(argv)
    ensure_models(args.bentoml_home)
    env = dict(item.split("=", 1) for item in args.env)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / "profiles" / f"{stamp}-{args.label}"
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="churn-profile-"))
    bodies = workdir / "bodies.jsonl"
    bodies.write_text("\n".join(json.dumps(c) for c in make_customers(2000)) + "\n")
    server = start_bento(args.label, args.bentoml_home, workdir, env=env)
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    try:
        run_wrk(server.url, bodies, 4, 3)
        spies = []
        for pid in server.pids()[1:]:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            label = cmd[cmd.index(b"--service-name") + 1].decode()
            label += "#" + cmd[cmd.index(b"--worker-id") + 1].decode()
            target = out / f"{label}.txt"
            command = [py_spy, "record", "-p", str(pid), "-d", f"{args.seconds:g}"]
            command += ["-r", str(RATE), "--format", "raw", "-o", str(target)]
            spies.append(
                (label, target, subprocess.Popen(command, stdout=subprocess.DEVNULL))
            )
        result: dict[str, Any] = {}
        load = threading.Thread(
            target=lambda: result.update(
                run_wrk(server.url, bodies, args.concurrency, args.seconds + 2)
            )
        )
        load.start()
        time.sleep(min(3.0, args.seconds / 2))
        connections = _connections_per_worker(server.port, server.pids()[1:])
        for _, _, spy in spies:
            spy.wait(timeout=args.seconds + 60)
        load.join()
    finally:
        server.stop()
    report = {
        "server": server.description,
        "wrk": result,
        "connections": connections,
        "workers": {},
    }
    lines = [f"# Profile {stamp} {args.label}: {server.description}", ""]
    lines.append(
        f"wrk c={args.concurrency}: {result.get('requests', 0)} requests, "
        f"{result.get('status', 0)} non-2xx, "
        f"p50 {result.get('p50_us', 0) / 1000:.1f} ms"
    )
    lines.append(f"client connections per worker pid: {connections}")
    for label, target, _ in spies:
        summary = summarise(target)
        cpu = int(summary["samples"]) / (args.seconds * RATE)  # type: ignore[call-overload]
        summary["cpu_share"] = round(cpu, 3)
        report["workers"][label] = summary  # type: ignore[index]
        lines += ["", f"## {label}: {cpu:.0%} of a core ({summary['samples']} samples)"]
        lines += [""]
        lines += ["| inclusive | share |", "|---|---:|"]
        lines += [f"| {k} | {v:.1%} |" for k, v in summary["inclusive"].items()]  # type: ignore[attr-defined]
        lines += ["", "| top self frames | share |", "|---|---:|"]
        lines += [f"| `{k}` | {v:.1%} |" for k, v in summary["self_top"]]  # type: ignore[attr-defined]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    print(text)
    print(f"written {out.relative_to(REPO_ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
