"""Start and stop a real ``bentoml serve`` of this project for tests.

Every server listens on 127.0.0.1 on a free port, runs in its own session so
its worker processes can be found and stopped through its PID, and leaves no
process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).with_name("bentoml")
SAMPLE = REPO_ROOT.parent / "shared" / "data" / "telco-customer-churn.sample.csv"
ADMIN_TOKEN = "test-admin-token"


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after its closing ')' are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendant_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        parent = _parent(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def private_home(trained_home: Path, destination: Path) -> Path:
    """A BENTOML_HOME of its own that shares the trained models and bentos.

    ``bentoml serve`` wipes ``$BENTOML_HOME/prometheus_multiproc_dir`` at
    start, so a second server on the same home would erase the metrics of the
    first; models and bentos are only read, so they are linked.
    """
    destination.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        (trained_home / store).mkdir(exist_ok=True)
        link = destination / store
        if not link.exists():
            link.symlink_to(trained_home / store, target_is_directory=True)
    return destination


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def stop(self, timeout_s: float = 20.0) -> list[int]:
        """SIGTERM the server by PID and wait for it and every worker to exit.

        Returns the PIDs that had to be SIGKILLed (an empty list is a clean
        shutdown), so tests can assert nothing was left behind.
        """
        workers = self.child_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _is_alive(pid)]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return alive


def _is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


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
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BENTOML), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = BentoServer(
        f"http://127.0.0.1:{port}", port, process, log_path, ledger_path, server_env
    )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(
        f"bentoml serve did not become ready (exit {process.poll()}):\n"
        + server.log()[-4000:]
    )
