"""Does batch traffic slow online predictions down? (issue #17, diagnostics)

``python -m benchmarks.batch_interference`` serves
``benchmarks.diagnostic_service`` (churn-ab with BentoML's batching
dispatcher logging its learned state), then sends single ``/predict`` calls
one at a time before, during and after a burst of ``/predict_batch`` calls,
and prints each phase's latency next to what each model service's dispatcher
had learned by then. Results go to ``benchmarks/results/<stamp>-<label>.md``.

Run it from another checkout to measure that code, e.g. the commit before a
fix: ``cd /tmp/old && python -m benchmarks.batch_interference --label before``
after copying this file and ``diagnostic_service.py`` into it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.customers import make_customers
from benchmarks.servers import REPO_ROOT, Server, start_bento

RESULTS = REPO_ROOT / "benchmarks" / "results"
UPDATE = re.compile(
    r"DISPATCHER (?P<t>[\d.]+) (?P<pid>\d+) Dynamic batching optimizer params "
    r"updated: o_a: (?P<a>[-\d.]+), o_b: (?P<b>[-\d.]+), wait: (?P<wait>[-\d.]+)"
)


@dataclass(frozen=True)
class Phase:
    name: str
    started: float
    ended: float
    latencies_ms: tuple[float, ...] = ()
    note: str = ""

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=200, help="calls per phase")
    parser.add_argument("--batches", type=int, default=20, help="batches in a burst")
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--pauses", default="20,40", help="s between after-phases")
    parser.add_argument("--env", action="append", default=[], metavar="K=V")
    parser.add_argument(
        "--bentoml-home",
        type=Path,
        default=Path(os.environ.get("BENTOML_HOME", "/tmp/bench-bentoml")),
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="batch-interference")
    return parser.parse_args(argv)


def singles(client: httpx.Client, bodies: list[bytes], count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        response = client.post("/predict", content=bodies[i % len(bodies)])
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


def burst(client: httpx.Client, body: bytes, count: int) -> None:
    for _ in range(count):
        client.post("/predict_batch", content=body, timeout=300).raise_for_status()


def dispatcher_updates(server: Server) -> list[dict[str, float]]:
    """Every optimizer refresh in the server's log, with the service it is in."""
    services = _service_names(server)
    updates = []
    for match in UPDATE.finditer(server.log_path.read_text(errors="replace")):
        pid = int(match["pid"])
        updates.append(
            {
                "t": float(match["t"]),
                "pid": pid,
                "service": services.get(pid, str(pid)),
                "o_a": float(match["a"]),
                "o_b": float(match["b"]),
                "wait": float(match["wait"]),
            }
        )
    return updates


def _service_names(server: Server) -> dict[int, str]:
    names = {}
    for pid in server.pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for flag in (b"--service-name", b"--worker-env"):
            if flag in argv:
                names[pid] = argv[argv.index(flag) + 1].decode()[:40]
                break
    return names


def learned_waits(
    updates: list[dict[str, float]], started: float, ended: float
) -> dict[str, tuple[float, float]]:
    """Per model service: (first, last) learned wait refreshed in the window,
    or the last one before it when none was."""
    out: dict[str, tuple[float, float]] = {}
    for service in sorted({str(u["service"]) for u in updates}):
        mine = [u for u in updates if u["service"] == service]
        inside = [u["wait"] for u in mine if started <= u["t"] <= ended]
        before = [u["wait"] for u in mine if u["t"] < started]
        if inside:
            out[service] = (inside[0], inside[-1])
        elif before:
            out[service] = (before[-1], before[-1])
    return out


def run(server: Server, args: argparse.Namespace) -> list[Phase]:
    bodies = [json.dumps(c).encode() for c in make_customers(500)]
    batch = json.dumps({"customers": make_customers(args.batch_rows, seed=11)})
    phases: list[Phase] = []
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        singles(client, bodies, 50)  # warm-up, not reported

        def phase(name: str) -> None:
            started = time.time()
            latencies = singles(client, bodies, args.singles)
            phases.append(Phase(name, started, time.time(), tuple(latencies)))

        phase("before")
        with httpx.Client(base_url=server.url, headers=headers) as bulk:
            worker = threading.Thread(
                target=burst, args=(bulk, batch.encode(), args.batches // 2)
            )
            started = time.time()
            worker.start()
            latencies = []
            while worker.is_alive():
                latencies += singles(client, bodies, 10)
            worker.join()
            phases.append(
                Phase(
                    "during a burst",
                    started,
                    time.time(),
                    tuple(latencies),
                    f"{args.batches // 2} × {args.batch_rows:,} rows alongside",
                )
            )
            started = time.time()
            burst(bulk, batch.encode(), args.batches)
            rows = args.batches * args.batch_rows
            phases.append(
                Phase(
                    "burst alone",
                    started,
                    time.time(),
                    note=f"{args.batches} × {args.batch_rows:,} rows "
                    f"({rows:,}) in {time.time() - started:.1f} s",
                )
            )
        phase("right after")
        waited = 0
        for pause in (int(p) for p in args.pauses.split(",") if p):
            time.sleep(pause)
            waited += pause
            phase(f"{waited} s after")
    return phases


def render(
    phases: list[Phase], updates: list[dict[str, float]], title: str, env: str
) -> str:
    services = sorted({str(u["service"]) for u in updates})
    lines = [
        f"# {title}",
        "",
        f"Server: `bentoml serve benchmarks.diagnostic_service:ChurnAB` {env}".strip(),
        f"Load average at end: {os.getloadavg()[0]:.1f} (2 shared cores).",
        "",
        "| phase | single /predict p50 ms | p99 ms | calls | "
        + " | ".join(f"learned wait s: {s}" for s in services)
        + " | note |",
        "|---|---:|---:|---:|" + "---:|" * len(services) + "---|",
    ]
    for p in phases:
        waits = learned_waits(updates, p.started, p.ended)
        cells = [
            "{:.3f} → {:.3f}".format(*waits[s]) if s in waits else "–" for s in services
        ]
        if p.latencies_ms:
            stats = (
                f"{statistics.median(p.latencies_ms):.2f} | "
                f"{p.quantile(0.99):.2f} | {len(p.latencies_ms)}"
            )
        else:
            stats = "| |"
        lines.append(f"| {p.name} | {stats} | " + " | ".join(cells) + f" | {p.note} |")
    lines += ["", "Optimizer refreshes (seconds from the first phase):", ""]
    t0 = phases[0].started if phases else 0.0
    lines += ["| t s | service | o_a | o_b | wait s |", "|---:|---|---:|---:|---:|"]
    lines += [
        f"| {u['t'] - t0:.1f} | {u['service']} | {u['o_a']:.6f} | {u['o_b']:.6f} "
        f"| {u['wait']:.6f} |"
        for u in updates
        if u["t"] >= t0 - 1
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    workdir = Path(tempfile.mkdtemp(prefix="churn-interference-"))
    server = start_bento(
        "churn-ab",
        args.bentoml_home,
        workdir,
        env=env,
        target="benchmarks.diagnostic_service:ChurnAB",
    )
    try:
        phases = run(server, args)
        updates = dispatcher_updates(server)
    finally:
        server.stop()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    settings = " ".join(f"{k}={v}" for k, v in env.items())
    markdown = render(phases, updates, f"Batch interference {stamp}", settings)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}-{args.label}.md"
    path.write_text(markdown)
    print(markdown)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
