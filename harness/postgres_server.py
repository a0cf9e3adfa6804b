"""A real, throw-away PostgreSQL for tests and benchmarks.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` from the Debian
``postgresql`` package (``scripts/install-system-deps.sh``) into a temporary
directory, listening on 127.0.0.1 on a free port with its unix socket inside
that directory, and requires a password over TCP like a real deployment.
``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` system user. ``stop()`` stops it with ``pg_ctl stop`` on its
data directory, checks its PID is gone, and removes every file it made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from harness.processes import free_port

USER = "postgres"
PASSWORD = "test-password"


class PostgresError(RuntimeError):
    """PostgreSQL is missing, did not start or did not stop."""


def postgres_bindir() -> Path:
    """Newest ``/usr/lib/postgresql/<major>/bin`` (``PG_BINDIR`` wins)."""
    configured = os.environ.get("PG_BINDIR")
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise PostgresError(
        "PostgreSQL server binaries not found (initdb, pg_ctl): run "
        "scripts/install-system-deps.sh or set PG_BINDIR"
    )


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class PostgresServer:
    bindir: Path = field(default_factory=postgres_bindir)
    root: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="churn-ab-pg-"))
    )
    port: int = 0
    pid: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def _as_owner(self, *command: str) -> list[str]:
        # initdb and postgres refuse root; the tmp dir is handed to postgres.
        if os.geteuid() == 0:
            return ["runuser", "-u", USER, "--", *command]
        return list(command)

    def start(self, timeout_s: float = 60.0) -> PostgresServer:
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, USER, USER)
            shutil.chown(password_file, USER, USER)
        subprocess.run(
            self._as_owner(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throw-away cluster; saves seconds
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.port = self.port or free_port()
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {self.root}",
                # Throw-away data: skip fsync so tests on a busy machine stay
                # quick; commit visibility across connections is unchanged.
                "-c fsync=off",
                "-c full_page_writes=off",
            ]
        )
        started = subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout_s)),
            ),
            capture_output=True,
            timeout=timeout_s + 10,
        )
        pid_file = self.data_dir / "postmaster.pid"
        if pid_file.exists():
            self.pid = int(pid_file.read_text().split()[0])
        if started.returncode != 0:
            self.stop()
            raise PostgresError(
                f"pg_ctl start failed ({started.returncode}): "
                f"{started.stderr.decode(errors='replace')}\n{self.log()[-4000:]}"
            )
        return self

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            )
        return self.url(name)

    def stop(self) -> list[int]:
        """Stop by ``pg_ctl stop`` on the data directory and remove the files.

        Returns PIDs that had to be SIGKILLed (empty: a clean shutdown).
        """
        leftover: list[int] = []
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner(
                    str(self.bindir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                ),
                capture_output=True,
                timeout=40,
            )
        if self.pid is not None:
            deadline = time.monotonic() + 10
            while _pid_alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                leftover.append(self.pid)
        shutil.rmtree(self.root, ignore_errors=True)
        return leftover

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
