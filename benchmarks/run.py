"""Side-by-side benchmark: the Bento, a bare Starlette floor, the old prototype.

``python -m benchmarks.run`` (``make bench``) starts each server on a free
loopback port, drives it with ``wrk`` POSTing rotating realistic customers at
each concurrency, interleaving servers (A, B, C, A, B, C, ...) so load from
other work on the machine spreads over all of them, then posts 10,000
customers to ``/predict_batch``. Between the two, churn-ab runs the mixed
scenario of ``benchmarks.mixed`` (``/predict`` alone, while batch jobs run,
and right after a burst of batch rows; issue #17). It prints one table and
writes it, with the machine description and raw numbers, to
``benchmarks/results/<stamp>.md`` and ``.json``.

Extra Bento configurations join the same interleaving with ``--variant
NAME:KEY=VALUE,KEY=VALUE`` (environment for ``bentoml serve``: settings, a
BentoML config file, a PYTHONPATH shim; production code is never patched).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.customers import make_customers
from benchmarks.machine import CpuMeter, describe, describe_markdown
from benchmarks.mixed import check_mixed, render_mixed, run_mixed
from benchmarks.placement_targets import check_placements
from benchmarks.procs import pss_mb, rss_mb
from benchmarks.servers import REPO_ROOT, Server, start_bento, start_uvicorn

LUA = REPO_ROOT / "benchmarks" / "wrk_post.lua"
RESULTS = REPO_ROOT / "benchmarks" / "results"
DEFAULT_HOME = Path(os.environ.get("BENTOML_HOME", "/tmp/bench-bentoml"))
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "telco-customer-churn.sample.csv"
INLINE = {"CHURN_AB_MODEL_PLACEMENT": "inline"}


@dataclass
class Target:
    name: str
    start: Callable[[], Server]
    placement: str | None = None  # CHURN_AB_MODEL_PLACEMENT of a churn-ab server


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="s per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--concurrency", default="1,16", help="wrk connections")
    parser.add_argument("--warmup", type=float, default=3.0, help="s of warm-up")
    parser.add_argument(
        "--targets",
        default="bento,bento-inline,echo-hop,echo,bare,original",
        help="which standard servers",
    )
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,..")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of churn-ab, served as 'baseline' in the same run",
    )
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--batch-repeats", type=int, default=3)
    parser.add_argument(
        "--mixed",
        default="bento,bento-inline,baseline",
        help="servers that run the mixed online/batch scenario ('' for none)",
    )
    parser.add_argument(
        "--burst-rows", type=int, default=200_000, help="batch rows before 'after'"
    )
    parser.add_argument("--bodies", type=int, default=2_000, help="distinct customers")
    parser.add_argument("--bentoml-home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="", help="added to the result file name")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        help="py-spy each Bento's workers for this many s during a c=16 run",
    )
    return parser.parse_args(argv)


def ensure_models(home: Path) -> None:
    """Train the full models into ``home`` unless both are there already."""
    env = {**os.environ, "BENTOML_HOME": str(home)}
    listed = subprocess.run(
        [sys.executable, "-m", "bentoml", "models", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    names = {m.get("tag", "").split(":")[0] for m in json.loads(listed or "[]")}
    if {"churn_v1", "churn_v2"} <= names:
        return
    data = os.environ.get("CHURN_DATA", str(SAMPLE))
    print(f"training full models into {home} from {data} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "training", "--data", data],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=900,
    )


def build_targets(args: argparse.Namespace, workdir: Path) -> list[Target]:
    home = args.bentoml_home
    standard = {
        "bento": Target(
            "bento", lambda: start_bento("bento", home, workdir), "services"
        ),
        "bento-inline": Target(
            "bento-inline",
            lambda: start_bento("bento-inline", home, workdir, env=INLINE),
            "inline",
        ),
        "bare": Target(
            "bare",
            lambda: start_uvicorn(
                "bare", "benchmarks.bare_starlette:app", home, workdir, access_log=False
            ),
        ),
        # Framework floors: the same contract in a Bento with no work behind it.
        "echo": Target(
            "echo",
            lambda: start_bento(
                "echo", home, workdir, target="benchmarks.floor_service:Echo"
            ),
        ),
        "echo-hop": Target(
            "echo-hop",
            lambda: start_bento(
                "echo-hop", home, workdir, target="benchmarks.floor_service:EchoHop"
            ),
        ),
        "original": Target(
            "original",
            lambda: start_uvicorn(
                "original",
                "benchmarks.original_fastapi:app",
                home,
                workdir,
                access_log=True,
            ),
        ),
    }
    chosen = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(chosen) - set(standard)
    if unknown:
        raise SystemExit(f"--targets: unknown {sorted(unknown)}")
    targets = [standard[t] for t in chosen]
    if args.baseline is not None:
        root = args.baseline.resolve()
        targets.append(
            Target(
                "baseline",
                functools.partial(start_bento, "baseline", home, workdir, root=root),
            )
        )
    for spec in args.variant:
        name, _, settings = spec.partition(":")
        env = dict(item.split("=", 1) for item in settings.split(",") if item)
        targets.append(
            Target(
                name,
                functools.partial(start_bento, name, home, workdir, env=env),
                env.get("CHURN_AB_MODEL_PLACEMENT", "services"),
            )
        )
    return targets


class RssSampler(threading.Thread):
    """Peak RSS/PSS sum of a server's process tree while a run lasts."""

    def __init__(self, server: Server, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.every_s = every_s
        self.peak_rss = 0.0
        self.peak_pss = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak_rss = max(self.peak_rss, rss_mb(self.server.pid))
            self.peak_pss = max(self.peak_pss, pss_mb(self.server.pid))
            self._done.wait(self.every_s)

    def finish(self) -> tuple[float, float]:
        self._done.set()
        self.join()
        return self.peak_rss, self.peak_pss


def run_wrk(
    url: str, bodies: Path, concurrency: int, duration: float, path: str = "/predict"
) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "10s"]
    command += ["-s", str(LUA), url]
    env = {**os.environ, "WRK_BODIES": str(bodies), "WRK_PATH": path}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + 60
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return dict(json.loads(line[len("WRK_JSON ") :]))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")


def measure_run(
    server: Server, bodies: Path, concurrency: int, duration: float
) -> dict[str, Any]:
    sampler = RssSampler(server)
    meter = CpuMeter(server.pids())
    load1 = os.getloadavg()[0]
    sampler.start()
    result = run_wrk(server.url, bodies, concurrency, duration)
    busy, server_cpu_s = meter.read()
    peak_rss, peak_pss = sampler.finish()
    seconds = result["duration_us"] / 1e6
    requests = max(1, result["requests"])
    return {
        **result,
        "server": server.name,
        "concurrency": concurrency,
        "rps": result["requests"] / seconds,
        "server_cpu_ms_per_req": server_cpu_s * 1000 / requests,
        "machine_busy": busy,
        "load1_at_start": load1,
        "peak_rss_mb": peak_rss,
        "peak_pss_mb": peak_pss,
        "socket_errors": result["connect"]
        + result["read"]
        + result["write"]
        + result["timeout"],
        "non_2xx": result["status"],
    }


def post_batch(server: Server, body: bytes, rows: int) -> dict[str, Any]:
    started = time.perf_counter()
    response = httpx.post(
        server.url + "/predict_batch",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    ok = response.status_code == 200 and response.json().get("count") == rows
    return {
        "server": server.name,
        "seconds": elapsed,
        "us_per_row": elapsed * 1e6 / rows,
        "status": response.status_code,
        "ok": ok,
    }


def profile_workers(
    server: Server, seconds: float, out_dir: Path
) -> list[tuple[Path, subprocess.Popen[bytes]]]:
    """Start py-spy on every worker of a Bento: (raw-stack file, process) pairs."""
    py_spy = Path(sys.executable).with_name("py-spy")
    started = []
    for pid in server.pids()[1:]:
        name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        label = "worker"
        if b"--service-name" in name:
            label = name[name.index(b"--service-name") + 1].decode()
        target = out_dir / f"{server.name}-{label}-{pid}.txt"
        command = [str(py_spy), "record", "-p", str(pid), "-d", f"{seconds:g}"]
        command += ["-r", "200", "--format", "raw", "-o", str(target), "--nonblocking"]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append((target, process))
    return started


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    return {
        "rps": med("rps"),
        "p50_ms": med("p50_us") / 1000,
        "p90_ms": med("p90_us") / 1000,
        "p99_ms": med("p99_us") / 1000,
        "rps_range": [min(r["rps"] for r in runs), max(r["rps"] for r in runs)],
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "server_cpu_ms_per_req": med("server_cpu_ms_per_req"),
        "machine_busy": med("machine_busy"),
        "load1": med("load1_at_start"),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_pss_mb": max(r["peak_pss_mb"] for r in runs),
    }


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}×" if base else "–"


def render(report: dict[str, Any]) -> str:
    s = report["summary"]
    conc = report["settings"]["concurrency"]
    names = report["servers"]
    lines = [
        f"# Benchmark {report['stamp']}",
        "",
        f"Machine: {describe_markdown(report['machine'])}.",
        f"Load average at start {report['machine']['load_average']}, "
        f"at end {report['load_average_end']} (other work shares these cores).",
        f"wrk -t1, {report['settings']['duration']:g} s per run, "
        f"{report['settings']['rounds']} interleaved rounds (medians shown, "
        "errors summed), POST /predict with "
        f"{report['settings']['bodies']} rotating customers.",
        "",
        "Servers: "
        + "; ".join(f"**{n}** = {report['descriptions'][n]}" for n in names)
        + ".",
        "",
        "| server | conc | req/s (range) | p50 ms | p90 ms | p99 ms | non-2xx "
        "| socket err | server CPU ms/req | × bare | × original | machine busy "
        "| load1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in conc:
        bare = s.get(f"bare@{c}", {}).get("rps")
        original = s.get(f"original@{c}", {}).get("rps")
        for name in names:
            row = s.get(f"{name}@{c}")
            if row is None:
                continue
            lo, hi = row["rps_range"]
            lines.append(
                f"| {name} | {c} | {row['rps']:,.0f} ({lo:,.0f}–{hi:,.0f}) "
                f"| {row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} "
                f"| {row['non_2xx']} | {row['socket_errors']} "
                f"| {row['server_cpu_ms_per_req']:.2f} | {_ratio(row['rps'], bare)} "
                f"| {_ratio(row['rps'], original)} | {row['machine_busy']:.0%} "
                f"| {row['load1']:.1f} |"
            )
    lines += [
        "",
        f"`/predict_batch` with {report['settings']['batch_rows']:,} customers "
        f"(client wall time, median of {report['settings']['batch_repeats']}):",
        "",
        "| server | median s | µs/row | all 200 with full count |",
        "|---|---:|---:|---|",
    ]
    for name in names:
        batch = report["batch"].get(name)
        if batch:
            lines.append(
                f"| {name} | {batch['seconds']:.3f} | {batch['us_per_row']:.1f} "
                f"| {'yes' if batch['ok'] else 'NO'} |"
            )
    lines += [
        "",
        "Memory of the whole serving process tree (MB; RSS sums count shared "
        "pages once per process, PSS splits them):",
        "",
        "| server | processes | RSS idle | PSS idle | RSS peak under load "
        "| PSS peak under load | idle CPU (% of a core) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        m = report["memory"][name]
        peak_rss = max(
            (v["peak_rss_mb"] for k, v in s.items() if k.startswith(name + "@")),
            default=0.0,
        )
        peak_pss = max(
            (v["peak_pss_mb"] for k, v in s.items() if k.startswith(name + "@")),
            default=0.0,
        )
        lines.append(
            f"| {name} | {m['processes']} | {m['idle_rss_mb']:.0f} "
            f"| {m['idle_pss_mb']:.0f} | {peak_rss:.0f} | {peak_pss:.0f} "
            f"| {m.get('idle_cpu_share', 0.0):.1%} |"
        )
    if report.get("mixed"):
        lines += [
            "",
            "Mixed scenario (issue #17): `/predict` alone, while `/predict_batch` "
            f"jobs of {report['settings']['batch_rows']:,} rows run back to back, "
            f"and right after {report['settings']['burst_rows']:,} batch rows:",
            "",
            *render_mixed(report["mixed"]),
        ]
    lines += ["", "Targets (reported, not asserted):", ""]
    lines += [f"- {t}" for t in report["targets"]]
    if report.get("profiles"):
        lines += ["", "py-spy raw stacks: " + ", ".join(report["profiles"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ensure_models(args.bentoml_home)
    machine = describe()
    workdir = Path(tempfile.mkdtemp(prefix="churn-bench-"))
    bodies = workdir / "bodies.jsonl"
    customers = make_customers(args.bodies)
    bodies.write_text("\n".join(json.dumps(c) for c in customers) + "\n")
    batch_body = json.dumps({"customers": make_customers(args.batch_rows, seed=11)})

    targets = build_targets(args, workdir)
    servers: dict[str, Server] = {}
    runs: list[dict[str, Any]] = []
    batch_runs: list[dict[str, Any]] = []
    memory: dict[str, dict[str, float]] = {}
    mixed: dict[str, dict[str, Any]] = {}
    profiles: list[str] = []
    try:
        for target in targets:
            print(f"starting {target.name} ...", flush=True)
            servers[target.name] = target.start()
        idle_meters = {n: CpuMeter(s.pids()) for n, s in servers.items()}
        time.sleep(5)
        for name, server in servers.items():
            memory[name] = {
                "idle_cpu_share": idle_meters[name].read()[1] / 5.0,
                "processes": len(server.pids()),
                "idle_rss_mb": rss_mb(server.pid),
                "idle_pss_mb": pss_mb(server.pid),
            }
        for server in servers.values():
            run_wrk(server.url, bodies, 4, args.warmup)
        for round_index in range(args.rounds):
            for c in concurrency:
                for server in servers.values():
                    spies = []
                    if (
                        args.profile
                        and round_index == 0
                        and c == max(concurrency)
                        and server.name not in ("bare", "original")
                    ):
                        pdir = args.out / "profiles" / stamp
                        pdir.mkdir(parents=True, exist_ok=True)
                        spies = profile_workers(server, args.profile, pdir)
                    run = measure_run(server, bodies, c, args.duration)
                    for path, spy in spies:
                        spy.wait(timeout=args.profile + 60)
                        profiles.append(str(path.relative_to(REPO_ROOT)))
                    run["round"] = round_index
                    runs.append(run)
                    print(
                        f"round {round_index} {server.name:>10} c={c:<3} "
                        f"{run['rps']:8.0f} req/s p50 {run['p50_us'] / 1000:6.2f} ms "
                        f"p99 {run['p99_us'] / 1000:7.2f} ms "
                        f"errors {run['non_2xx']}+{run['socket_errors']} "
                        f"cpu {run['server_cpu_ms_per_req']:.2f} ms/req "
                        f"load1 {run['load1_at_start']:.1f}",
                        flush=True,
                    )
        for name in [n.strip() for n in args.mixed.split(",") if n.strip()]:
            if name not in servers:
                continue
            print(f"mixed scenario on {name} ...", flush=True)
            mixed[name] = run_mixed(
                servers[name],
                lambda server, c: measure_run(server, bodies, c, args.duration),
                concurrency,
                batch_body.encode(),
                args.batch_rows,
                args.burst_rows,
            )
            print("\n".join(render_mixed({name: mixed[name]})), flush=True)
        for _ in range(args.batch_repeats + 1 if args.batch_repeats else 0):
            for server in servers.values():
                batch_runs.append(
                    post_batch(server, batch_body.encode(), args.batch_rows)
                )
    finally:
        for server in servers.values():
            server.stop()

    summary = {}
    for name in servers:
        for c in concurrency:
            subset = [r for r in runs if r["server"] == name and r["concurrency"] == c]
            if subset:
                summary[f"{name}@{c}"] = summarise(subset)
    batch: dict[str, Any] = {}
    for name in servers:
        # The first post per server warms caches and the allocator; drop it.
        timed = [b for b in batch_runs if b["server"] == name][1:]
        if timed:
            batch[name] = {
                "seconds": statistics.median(b["seconds"] for b in timed),
                "us_per_row": statistics.median(b["us_per_row"] for b in timed),
                "ok": all(b["ok"] for b in timed),
            }
    report: dict[str, Any] = {
        "stamp": stamp,
        "machine": machine,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "settings": {
            "duration": args.duration,
            "rounds": args.rounds,
            "concurrency": concurrency,
            "bodies": args.bodies,
            "batch_rows": args.batch_rows,
            "batch_repeats": args.batch_repeats,
            "burst_rows": args.burst_rows,
        },
        "servers": list(servers),
        "placements": {
            t.name: t.placement
            for t in targets
            if t.placement is not None and t.name in servers
        },
        "descriptions": {n: s.description for n, s in servers.items()},
        "summary": summary,
        "batch": batch,
        "memory": memory,
        "mixed": mixed,
        "runs": runs,
        "batch_runs": batch_runs,
        "profiles": profiles,
    }
    report["targets"] = check_placements(report) + check_mixed(mixed, batch)
    markdown = render(report)
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / (stamp + (f"-{args.label}" if args.label else ""))
    base.with_suffix(".md").write_text(markdown)
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    print()
    print(markdown)
    print(f"written {base.with_suffix('.md')} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
