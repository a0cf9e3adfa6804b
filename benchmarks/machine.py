"""What the numbers were measured on: cores, CPU, load, versions, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.servers import REPO_ROOT

PACKAGES = ("bentoml", "scikit-learn", "numpy", "fastapi", "starlette", "uvicorn")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0]
        if done.stdout or done.stderr
        else ""
    )


def describe() -> dict[str, Any]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _mem_total_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "wrk": _run(["wrk", "-v"]),
        "commit": _run(["git", "rev-parse", "--short", "HEAD"]),
        "worktree_dirty": bool(dirty),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def describe_markdown(machine: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return (
        f"{machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['memory_gb']} GB, Linux {machine['kernel']}, "
        f"Python {machine['python']}; {versions}; {machine['wrk']}; "
        f"commit {machine['commit']}"
        + (
            " (uncommitted changes in tracked files)"
            if machine["worktree_dirty"]
            else ""
        )
    )


class CpuMeter:
    """Machine-wide busy share and a process tree's CPU seconds between marks."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self._machine = _machine_ticks()
        self._tree = _tree_ticks(pids)

    def read(self) -> tuple[float, float]:
        """(machine busy share 0..1, tree CPU seconds) since construction."""
        busy0, total0 = self._machine
        busy1, total1 = _machine_ticks()
        share = (busy1 - busy0) / max(1, total1 - total0)
        ticks = _tree_ticks(self.pids) - self._tree
        return share, ticks / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _tree_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(stat[11]) + int(stat[12])  # utime + stime
    return total
