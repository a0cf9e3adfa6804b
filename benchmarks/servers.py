"""Start and stop the servers under test: ``bentoml serve`` and uvicorn apps.

Started and stopped by ``harness.processes``, the same code the tests use: on
127.0.0.1 on a free port, in its own session, stopped by its PID, and any
descendant still alive afterwards killed by PID and reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import descendants
from harness.processes import (
    HOST,
    free_port,
    spawn,
    stop_process_tree,
    wait_until_ready,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


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

    def stop(self, timeout_s: float = 20.0) -> list[int]:
        """Stop by PID; the PIDs that had to be SIGKILLed (empty: clean), also
        reported on stderr so a run that left something behind says so."""
        left = stop_process_tree(self.process, timeout_s)
        if left:
            print(f"{self.name}: killed leftover processes {left}", file=sys.stderr)
        return left


def _start(
    name: str,
    command: list[str],
    ready_path: str,
    port: int,
    env: Mapping[str, str],
    workdir: Path,
    description: str,
    ready_timeout_s: float,
    root: Path = REPO_ROOT,
) -> Server:
    log_path = workdir / f"{name}-{port}.log"
    full_env = {**os.environ, **env}
    process = spawn(command, cwd=root, env=full_env, log_path=log_path)
    server = Server(
        name, f"http://{HOST}:{port}", process, log_path, description, dict(env)
    )
    if wait_until_ready(process, server.url + ready_path, ready_timeout_s):
        return server
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
    root: Path = REPO_ROOT,
) -> Server:
    """``bentoml serve target`` from ``root`` (another checkout serves that
    checkout's code: a baseline in the same run)."""
    port = free_port()
    server_env = {
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "true",
        "CHURN_AB_LEDGER_PATH": str(workdir / f"{name}-ledger.sqlite3"),
        **(env or {}),
    }
    command = [str(VENV_BIN / "bentoml"), "serve", target]
    command += ["--host", HOST, "--port", str(port)]
    settings = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    description = f"bentoml serve {target}" + (f" with {settings}" if settings else "")
    if root != REPO_ROOT:
        description += f" from {root}"
    return _start(
        name,
        command,
        "/readyz",
        port,
        server_env,
        workdir,
        description,
        ready_timeout_s,
        root,
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
    command = [str(VENV_BIN / "uvicorn"), app, "--host", HOST]
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
