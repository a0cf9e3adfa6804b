"""Process-tree memory from /proc, for servers whose workers call setsid.

BentoML's circus arbiter starts every worker in its own session, so "same
session as the server" finds none of them; the parent links in
``/proc/<pid>/stat`` do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.processes import descendant_pids

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, parents before children."""
    return [root, *descendant_pids(root)]


@dataclass(frozen=True)
class ProcMemory:
    pid: int
    name: str
    rss_kb: int
    pss_kb: int | None


def _name(pid: int) -> str:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = [a.decode(errors="replace") for a in args if a]
    if "--service-name" in text:
        service = text[text.index("--service-name") + 1]
        worker = text[text.index("--worker-id") + 1] if "--worker-id" in text else "?"
        return f"{service}#{worker}"
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(text[:3]))


def memory(pid: int) -> ProcMemory | None:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    pss = None
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
                break
    except OSError:
        pass
    return ProcMemory(pid, _name(pid), int(statm[1]) * PAGE_KB, pss)


def tree_memory(root: int) -> list[ProcMemory]:
    return [m for m in (memory(p) for p in descendants(root)) if m is not None]


def rss_mb(root: int) -> float:
    """Sum of resident set sizes of the tree (double-counts shared pages)."""
    return sum(m.rss_kb for m in tree_memory(root)) / 1024.0


def pss_mb(root: int) -> float:
    """Sum of proportional set sizes: shared pages split between sharers."""
    return sum(m.pss_kb or m.rss_kb for m in tree_memory(root)) / 1024.0
