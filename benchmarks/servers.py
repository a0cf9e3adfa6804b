"""Start and stop the servers under test: ``bentoml serve`` and uvicorn apps.

Every server listens on 127.0.0.1 on a free port, in its own session, and is
stopped by its PID; any descendant still alive afterwards is killed by PID
(BentoML's workers call setsid, so a process group does not reach them).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.procs import descendants

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    description: str
    env: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return descendants(self.pid) if self.process.poll() is None else []

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout_s: float = 20.0) -> None:
        tree = self.pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.1)
        for pid in tree:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(
    name: str,
    command: list[str],
    ready_path: str,
    port: int,
    env: Mapping[str, str],
    workdir: Path,
    description: str,
    ready_timeout_s: float,
) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}-{port}.log"
    full_env = {**os.environ, **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(
        name, f"http://127.0.0.1:{port}", process, log_path, description, dict(env)
    )
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(server.url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    tail = server.log_tail()
    server.stop()
    raise RuntimeError(f"{name} did not become ready (exit {process.poll()}):\n{tail}")


def start_bento(
    name: str,
    bentoml_home: Path,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    target: str = "service:ChurnAB",
    ready_timeout_s: float = 120.0,
) -> Server:
    port = free_port()
    server_env = {
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "true",
        "CHURN_AB_LEDGER_PATH": str(workdir / f"{name}-ledger.sqlite3"),
        **(env or {}),
    }
    command = [str(VENV_BIN / "bentoml"), "serve", target]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    settings = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    description = f"bentoml serve {target}" + (f" with {settings}" if settings else "")
    return _start(
        name,
        command,
        "/readyz",
        port,
        server_env,
        workdir,
        description,
        ready_timeout_s,
    )


def start_uvicorn(
    name: str,
    app: str,
    bentoml_home: Path,
    workdir: Path,
    *,
    access_log: bool,
    workers: int = 1,
    ready_timeout_s: float = 60.0,
) -> Server:
    port = free_port()
    command = [str(VENV_BIN / "uvicorn"), app, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    if not access_log:
        command.append("--no-access-log")
    description = f"uvicorn {app}, {workers} worker(s), access log " + (
        "on" if access_log else "off"
    )
    env = {"BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    return _start(
        name, command, "/health", port, env, workdir, description, ready_timeout_s
    )
