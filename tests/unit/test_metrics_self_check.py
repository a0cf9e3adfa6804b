"""The per-instance metrics directory and the workers' self-check."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from serving.metrics_dir import (
    INSTANCES_DIR,
    instance_dir,
    is_instance_dir,
    remove_stale_instance_dirs,
)
from serving.metrics_self_check import MetricsSelfCheck, remove_dead_gauge_files

HOST = "host-a"
SERVER_PID = os.getppid()


# No process can have this PID (Linux keeps PIDs below 2**22, macOS below
# 100,000): a dead worker without starting a process to let it die.
DEAD_PID = 2**22


def _worker(tmp_path: Path, pid: int = os.getpid()) -> tuple[MetricsSelfCheck, Path]:
    directory = instance_dir(tmp_path, HOST, SERVER_PID)
    directory.mkdir(parents=True)
    (directory / f"counter_{pid}.db").write_bytes(b"x")
    check = MetricsSelfCheck(directory, pid=pid, server_pid=SERVER_PID, host=HOST)
    assert check.check().ok
    return check, directory


def test_each_host_and_server_process_gets_its_own_directory(tmp_path: Path) -> None:
    a = instance_dir(tmp_path, HOST, 10)
    assert a == tmp_path / INSTANCES_DIR / "host-a-10"
    assert a != instance_dir(tmp_path, HOST, 11) != instance_dir(tmp_path, "b", 10)
    assert is_instance_dir(a, HOST, 10)
    assert not is_instance_dir(tmp_path / "prometheus_multiproc_dir", HOST, 10)
    assert not is_instance_dir(a, HOST, 11)


def test_only_directories_of_gone_servers_on_this_host_are_removed(
    tmp_path: Path,
) -> None:
    current = instance_dir(tmp_path, HOST, os.getpid())
    alive = instance_dir(tmp_path, HOST, SERVER_PID)
    gone = instance_dir(tmp_path, HOST, DEAD_PID)
    other_host = instance_dir(tmp_path, "host-b", DEAD_PID)
    for directory in (current, alive, gone, other_host):
        directory.mkdir(parents=True)
    assert remove_stale_instance_dirs(current, HOST) == [gone]
    assert current.exists() and alive.exists() and other_host.exists()


def test_removed_file_degrades_the_check_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    check, directory = _worker(tmp_path)
    (directory / f"counter_{os.getpid()}.db").unlink()
    with caplog.at_level(logging.ERROR, logger="churn_ab.metrics"):
        first = check.check()
        second = check.check()
    assert not first.ok and first == second
    assert "was removed" in (first.reason or "")
    assert first.to_health()["metrics"] == "degraded"
    assert len(caplog.records) == 1


def test_replaced_file_and_recreated_directory_degrade_the_check(
    tmp_path: Path,
) -> None:
    check, directory = _worker(tmp_path)
    own = directory / f"counter_{os.getpid()}.db"
    # prometheus_client keeps its files open (mmap), so their inodes stay taken.
    with own.open("rb"):
        # What BentoML's start does: rmtree, mkdir; then a file at the same path.
        own.unlink()
        directory.rmdir()
        directory.mkdir()
        own.write_bytes(b"y")
        status = check.check()
    assert not status.ok
    assert "was replaced" in (status.reason or "")


def test_files_appearing_later_are_watched_too(tmp_path: Path) -> None:
    check, directory = _worker(tmp_path)
    gauge = directory / f"gauge_livesum_{os.getpid()}.db"
    gauge.write_bytes(b"x")
    assert check.check().ok
    gauge.unlink()
    assert not check.check().ok


def test_a_directory_that_is_not_the_instances_own_is_degraded(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "prometheus_multiproc_dir"
    shared.mkdir()
    check = MetricsSelfCheck(shared, pid=os.getpid(), server_pid=1, host=HOST)
    status = check.check()
    assert not status.ok and "not this instance's own" in (status.reason or "")


def test_without_a_multiprocess_directory_the_check_is_ok() -> None:
    check = MetricsSelfCheck(None, pid=os.getpid(), server_pid=1, host=HOST)
    assert check.check().to_health() == {"metrics": "ok"}


def test_dead_workers_live_gauge_files_go_counters_stay(tmp_path: Path) -> None:
    dead, live = DEAD_PID, os.getpid()
    names = [
        f"gauge_livesum_{dead}.db",
        f"gauge_livemin_{dead}.db",
        f"gauge_all_{dead}.db",
        f"gauge_max_{dead}.db",
        f"counter_{dead}.db",
        f"histogram_{dead}.db",
        f"gauge_livesum_{live}.db",
        f"gauge_all_{live}.db",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = {p.name for p in remove_dead_gauge_files(tmp_path)}
    assert removed == set(names[:3])
    assert {p.name for p in tmp_path.iterdir()} == set(names[3:])
