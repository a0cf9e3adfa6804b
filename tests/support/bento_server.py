"""Start and stop a real ``bentoml serve`` of this project for tests.

Started and stopped by ``harness.processes`` (shared with the benchmarks): on
127.0.0.1 on a free port, stopped by PID, nothing left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import (
    HOST,
    descendant_pids,
    free_port,
    spawn,
    stop_process_tree,
    wait_until_ready,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).with_name("bentoml")
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "telco-customer-churn.sample.csv"
ADMIN_TOKEN = "test-admin-token"


def private_home(trained_home: Path, destination: Path) -> Path:
    """A BENTOML_HOME of its own that shares the trained models and bentos.

    Servers on one home no longer disturb each other's metrics (each has its
    own multiprocess directory, serving/metrics_dir.py), but a home per server
    keeps what a test leaves behind its own; models and bentos are only read,
    so they are linked.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        (trained_home / store).mkdir(exist_ok=True)
        link = destination / store
        if not link.exists():
            link.symlink_to(trained_home / store, target_is_directory=True)
    return destination


def sample_csv() -> Path:
    """The shared sample (``CHURN_DATA`` wins); tests need it to train."""
    configured = os.environ.get("CHURN_DATA")
    path = Path(configured) if configured else SAMPLE
    if not path.is_file():
        raise FileNotFoundError(
            f"training data not found at {path}: set CHURN_DATA to the sample CSV"
        )
    return path


def train_models(bentoml_home: Path, *, quick: bool = True) -> None:
    """Train both models into ``bentoml_home`` with the real training CLI."""
    command = [sys.executable, "-m", "training", "--data", str(sample_csv())]
    if quick:
        command.append("--quick")
    subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "BENTOML_HOME": str(bentoml_home)},
        check=True,
        capture_output=True,
        timeout=600,
    )


@dataclass
class BentoServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    ledger_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def child_pids(self) -> list[int]:
        """PIDs of every descendant process (BentoML's workers start their own
        sessions, so the process tree, not the session, finds them)."""
        return descendant_pids(self.pid)

    def stop(self, timeout_s: float = 20.0, *, also: Iterable[int] = ()) -> list[int]:
        """Stop by PID; the PIDs that had to be SIGKILLed (empty: clean)."""
        return stop_process_tree(self.process, timeout_s, also=also)


def start_bento_server(
    bentoml_home: Path,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    entry_workers: int = 2,
    ready_timeout_s: float = 90.0,
    target: str = "service:ChurnAB",
    own_home: bool = True,
) -> BentoServer:
    """Run ``bentoml serve`` from the repo root and wait until ``/readyz`` is 200.

    ``own_home=False`` serves from ``bentoml_home`` itself, so that several
    servers share one home as they would on one host.
    """
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    ledger_path = workdir / "ledger.sqlite3"
    home = (
        private_home(bentoml_home, workdir / "bentoml-home")
        if own_home
        else bentoml_home
    )
    server_env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "CHURN_AB_LEDGER_PATH": str(ledger_path),
        "CHURN_AB_ENTRY_WORKERS": str(entry_workers),
        "CHURN_AB_ADMIN_TOKEN": ADMIN_TOKEN,
        "BENTOML_DO_NOT_TRACK": "true",
        **(env or {}),
    }
    log_path = workdir / f"bentoml-{port}.log"
    command = [str(BENTOML), "serve", target, "--host", HOST, "--port", str(port)]
    process = spawn(command, cwd=REPO_ROOT, env=server_env, log_path=log_path)
    server = BentoServer(
        f"http://{HOST}:{port}", port, process, log_path, ledger_path, server_env
    )
    if wait_until_ready(process, f"{server.url}/readyz", ready_timeout_s):
        return server
    server.stop()
    raise RuntimeError(
        f"bentoml serve did not become ready (exit {process.poll()}):\n"
        + server.log()[-4000:]
    )
