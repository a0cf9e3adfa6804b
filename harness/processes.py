"""Start local servers and stop them by PID, leaving nothing behind.

Used by the tests and the benchmarks alike, so a server is started and stopped
one way everywhere. Every server listens on 127.0.0.1 on a free port and runs
in its own session. Stopping sends SIGTERM to the server's PID and waits for
it and every descendant: BentoML's circus workers call setsid, so neither a
session nor a process group reaches them, only the parent links in
``/proc/<pid>/stat`` do. Whatever outlives the wait is SIGKILLed by PID and
reported, so callers can assert that a shutdown was clean.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and ')'; the fields after the last ')'
    # are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendant_pids(root: int) -> list[int]:
    """Every process below ``root``, parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    queue = [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has exited and counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def spawn(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, stdout and stderr to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, timeout_s: float
) -> bool:
    """Poll ``url`` until it answers 200; False if the process exits first or
    the time runs out."""
    deadline = time.monotonic() + timeout_s
    # One client for every poll: a client per call costs ~20 ms of CPU (its
    # SSL context), and the servers it waits for are starting on those cores.
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get(url).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    return False


def stop_process_tree(
    process: subprocess.Popen[bytes],
    timeout_s: float = 20.0,
    *,
    also: Iterable[int] = (),
) -> list[int]:
    """SIGTERM ``process`` by PID, wait for it and every descendant, SIGKILL
    (by PID) whatever is left; return those PIDs (empty: a clean shutdown).

    ``also`` names PIDs found earlier, for a server that was already signalled
    and whose orphaned workers no longer descend from it.
    """
    tree = set(descendant_pids(process.pid)) | set(also)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    deadline = time.monotonic() + 10
    alive = sorted(tree)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if is_alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive
