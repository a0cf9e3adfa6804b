"""Freed memory that glibc kept goes back to the kernel after a trim."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from serving.allocator import _glibc

pytestmark = pytest.mark.skipif(_glibc() is None, reason="needs glibc")

PROBE = textwrap.dedent(
    """
    import json
    from serving.allocator import cap_arenas, release_free_memory

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    capped = cap_arenas(2)
    # 2 KB blocks come from malloc (not Python's small-object pools); keeping
    # every 50th pins the heap, so free() alone cannot shrink it.
    blocks = [bytes(2048) for _ in range(100_000)]
    kept = blocks[::50]
    del blocks
    before = rss_mb()
    trimmed = release_free_memory()
    after = rss_mb()
    print(json.dumps({"capped": capped, "trimmed": trimmed,
                      "before": before, "after": after, "kept": len(kept)}))
    """
)


def test_trim_returns_freed_heap_memory_to_the_kernel() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout)
    assert result["capped"] is True
    assert result["trimmed"] is True
    # ~200 MB were freed but still resident; the trim hands most of it back.
    assert result["before"] - result["after"] > 100, result


SAFE_REPEAT_PROBE = textwrap.dedent(
    """
    import json
    from serving.allocator import cap_arenas, release_free_memory

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    refused = [cap_arenas(0), cap_arenas(-1)]
    blocks = [bytes([7]) * 2048 for _ in range(100_000)]
    kept = blocks[::50]
    del blocks
    trims = [release_free_memory() for _ in range(3)]
    after_first = rss_mb()
    trims += [release_free_memory() for _ in range(3)]
    print(json.dumps({
        "refused": refused,
        "trims": trims,
        "grew_mb": rss_mb() - after_first,
        "kept_intact": all(b == bytes([7]) * 2048 for b in kept),
        "kept": len(kept),
    }))
    """
)


def test_zero_keeps_the_default_and_trim_is_safe_to_repeat() -> None:
    # In a child process: the arena cap is process-wide and must not leak
    # into the test runner.
    done = subprocess.run(
        [sys.executable, "-c", SAFE_REPEAT_PROBE],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    # 0 and below leave glibc's default alone: nothing is set.
    assert result["refused"] == [False, False]
    assert all(isinstance(trimmed, bool) for trimmed in result["trims"])
    # Trimming again frees nothing that is still in use: the live blocks keep
    # their bytes and the process does not grow back.
    assert result["kept"] == 2000 and result["kept_intact"] is True
    assert result["grew_mb"] < 5, result
