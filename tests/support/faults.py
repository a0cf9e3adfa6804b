"""Helpers for robustness tests: find a server's workers, read its ledger.

BentoML's supervisor (circus) starts every worker in a session of its own, so
workers are found by walking parent PIDs from the ``bentoml serve`` process,
and told apart by the ``--service-name`` on their command line.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from ab_router.ledger.codecs import compact_request_id, request_id_of
from tests.support.bento_server import descendant_pids, private_home

__all__ = ["descendant_pids", "private_home"]

ENTRY_SERVICE = "churn_ab"
V1_SERVICE = "churn_v1_model"
V2_SERVICE = "churn_v2_model"


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces.
    return int(stat.rsplit(")", 1)[1].split()[1])


def service_name(pid: int) -> str | None:
    """The ``--service-name`` a BentoML worker was started with, if any."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in argv]
    if "--service-name" in args:
        index = args.index("--service-name")
        if index + 1 < len(args):
            return args[index + 1]
    return None


def worker_pids(server_pid: int) -> dict[str, list[int]]:
    """Worker PIDs of a ``bentoml serve`` process, keyed by service name."""
    workers: dict[str, list[int]] = {}
    for pid in descendant_pids(server_pid):
        name = service_name(pid)
        if name is not None:
            workers.setdefault(name, []).append(pid)
    return workers


@contextmanager
def stopped(pids: Iterable[int]) -> Iterator[None]:
    """SIGSTOP the processes; SIGCONT them on the way out, whatever happens."""
    frozen = list(pids)
    try:
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in frozen:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


# -- the ledger, read-only ----------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


@dataclass(frozen=True)
class LedgerCounts:
    exposures: int
    labelled: int
    transitions: int


def ledger_counts(path: Path) -> LedgerCounts:
    """Rows the ledger holds now (exposures, labelled exposures, transitions)."""
    connection = _connect(path)
    try:
        exposures, labelled = connection.execute(
            "SELECT count(*), count(label) FROM exposures"
        ).fetchone()
        (transitions,) = connection.execute(
            "SELECT count(*) FROM transitions"
        ).fetchone()
    finally:
        connection.close()
    return LedgerCounts(int(exposures), int(labelled), int(transitions))


def exposure_rows(path: Path, request_ids: Iterable[str]) -> dict[str, dict]:
    """The exposure rows of the given request ids, keyed by request id."""
    ids = list(request_ids)
    rows: dict[str, dict] = {}
    connection = _connect(path)
    connection.row_factory = sqlite3.Row
    try:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in connection.execute(
                f"SELECT * FROM exposures WHERE request_id IN ({marks})",
                [compact_request_id(rid) for rid in chunk],
            ):
                # Stored as 16 bytes (ledger schema 3); callers know strings.
                row_dict = dict(row)
                row_dict["request_id"] = request_id_of(row["request_id"])
                rows[row_dict["request_id"]] = row_dict
    finally:
        connection.close()
    return rows


# -- Prometheus text ----------------------------------------------------------


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of ``name`` whose labels include ``labels``."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{(?P<labels>[^}}]*)\}})? (?P<v>\S+)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels") or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group("v"))
    return total


def ledger_files(path: Path) -> list[Path]:
    """The SQLite database and its WAL companions that exist now."""
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


@contextmanager
def immutable(paths: Iterable[Path]) -> Iterator[None]:
    """``chattr +i`` the files (even root cannot write them); undone on exit."""
    files = [str(p) for p in paths]
    subprocess.run(["chattr", "+i", *files], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *files], check=True, capture_output=True)
