"""Every worker checks that its metric files are still the ones Prometheus reads.

prometheus_client writes a worker's samples through ``mmap`` into
``<dir>/<kind>_<pid>.db``. When those files are unlinked (another BentoML
server wiping the directory, a tmp cleaner) or replaced, the worker goes on
writing into files nobody reads: its counters freeze in ``/metrics`` while it
answers traffic. A worker sees that by comparing the inode it recorded for
each of its files with the inode at the path; it then reports it in
``/health``, logs one error, and the worker that answers a scrape renders
``churn_ab_metrics_self_check`` from memory (a degraded worker cannot report
through its own files).

The same loop removes the gauge files of dead workers (``kill -9`` skips
prometheus_client's ``mark_process_dead``), so gauges show live workers only;
counter and histogram files stay, which keeps counters monotonic.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from serving.metrics import PREFIX, GaugeFamily
from serving.metrics_dir import (
    is_instance_dir,
    pid_alive,
    remove_stale_instance_dirs,
)

logger = logging.getLogger("churn_ab.metrics")

CHECK_INTERVAL_S = 5.0
# prometheus_client names a gauge file gauge_<mode>_<pid>.db. These modes
# describe live processes only; the others (min, max, sum, mostrecent) keep
# dead processes' values by design and are left alone.
LIVE_GAUGE_PREFIXES = ("gauge_live", "gauge_all_")


@dataclass(frozen=True)
class MetricsStatus:
    ok: bool
    reason: str | None = None

    def to_health(self) -> dict[str, str]:
        if self.ok:
            return {"metrics": "ok"}
        return {"metrics": "degraded", "metrics_reason": self.reason or ""}


OK = MetricsStatus(True)


def _pid_of(file: Path) -> int | None:
    pid = file.stem.rsplit("_", 1)[-1]
    return int(pid) if pid.isdigit() else None


def remove_dead_gauge_files(directory: Path) -> list[Path]:
    """Remove the live-mode gauge files of processes that no longer exist."""
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for file in directory.glob("gauge_*.db"):
            pid = _pid_of(file)
            if (
                pid is not None
                and file.name.startswith(LIVE_GAUGE_PREFIXES)
                and not pid_alive(pid)
            ):
                with contextlib.suppress(FileNotFoundError):  # a sibling was first
                    file.unlink()
                    removed.append(file)
    return removed


class MetricsSelfCheck:
    """One worker's view of its own multiprocess files."""

    def __init__(
        self,
        directory: Path | None,
        *,
        pid: int,
        server_pid: int,
        host: str,
    ) -> None:
        self.directory = directory
        self.pid = pid
        self.server_pid = server_pid
        self.host = host
        self._inodes: dict[str, tuple[int, int]] = {}
        self._status = OK
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> MetricsSelfCheck:
        """The check of this worker; BentoML hands the directory to every
        worker in ``PROMETHEUS_MULTIPROC_DIR``."""
        configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        return cls(
            Path(configured) if configured else None,
            pid=os.getpid(),
            server_pid=os.getppid(),
            host=socket.gethostname(),
        )

    @property
    def status(self) -> MetricsStatus:
        return self._status

    def check(self) -> MetricsStatus:
        """Re-examine the files; degraded stays degraded (the files the worker
        writes cannot come back), and is logged once."""
        with self._lock:
            if not self._status.ok or self.directory is None:
                return self._status
            found = self._problem(self.directory)
            if found is not None:
                self._status = MetricsStatus(False, found)
                logger.error(
                    "metrics degraded in worker %d: %s; this worker's samples "
                    "no longer reach /metrics: restart the server",
                    self.pid,
                    found,
                )
            return self._status

    def _problem(self, directory: Path) -> str | None:
        if not is_instance_dir(directory, self.host, self.server_pid):
            return (
                f"multiprocess directory {directory} is not this instance's own: "
                "another server on the same BENTOML_HOME would wipe it "
                "(serving/metrics_dir.py no longer takes effect?)"
            )
        for name, inode in self._inodes.items():
            try:
                info = (directory / name).stat()
            except FileNotFoundError:
                return f"metric file {directory / name} was removed"
            if (info.st_dev, info.st_ino) != inode:
                return f"metric file {directory / name} was replaced"
        with contextlib.suppress(FileNotFoundError):
            for file in directory.glob(f"*_{self.pid}.db"):
                info = file.stat()
                self._inodes.setdefault(file.name, (info.st_dev, info.st_ino))
        return None

    def housekeeping(self) -> None:
        """Check, then clear up after dead workers and gone instances."""
        self.check()
        if self.directory is not None and self._status.ok:
            for file in remove_dead_gauge_files(self.directory):
                logger.info("removed gauge file of a dead worker: %s", file.name)
            for gone in remove_stale_instance_dirs(self.directory, self.host):
                logger.info("removed metrics directory of a gone instance: %s", gone)

    def run_in_background(self, interval_s: float = CHECK_INTERVAL_S) -> None:
        """Run ``housekeeping`` now and every ``interval_s`` in a daemon thread
        (a few ``stat`` calls: no cost worth an event loop's attention)."""

        def loop() -> None:
            while True:
                try:
                    self.housekeeping()
                except OSError:
                    logger.exception("metrics self-check failed")
                stop.wait(interval_s)

        stop = threading.Event()
        threading.Thread(target=loop, name="metrics-self-check", daemon=True).start()


def self_check_families(
    status: MetricsStatus, expected_writers: int
) -> list[GaugeFamily]:
    """Gauges the answering worker renders at scrape time, from memory."""
    return [
        GaugeFamily(
            f"{PREFIX}metrics_self_check",
            "1 while the worker answering this scrape writes to the files "
            "/metrics reads, 0 when they were removed or replaced.",
            "gauge",
            (({}, 1.0 if status.ok else 0.0),),
        ),
        GaugeFamily(
            f"{PREFIX}metrics_expected_writers",
            "Worker processes of this instance that should report metrics "
            "(compare churn_ab_metrics_writers).",
            "gauge",
            (({}, float(expected_writers)),),
        ),
    ]
