"""Keep glibc's allocator from hoarding freed memory in long-lived workers.

A soak showed the entry workers' Python memory flat (tracemalloc) while their
resident size kept creeping up: glibc keeps freed chunks in one arena per
thread (BentoML and asyncio run ~15) and hands them back to the kernel only
when the top of a heap is free. Capping the arenas and trimming after the
big temporary allocations (a statistics recompute) returns that memory.
Everything here is a no-op where the C library is not glibc (e.g. musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


def cap_arenas(count: int) -> bool:
    """Let threads share at most ``count`` malloc arenas (0 keeps glibc's
    default of 8 per core). Call it before the threads start; True if set."""
    libc = _glibc()
    if libc is None or count <= 0:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def release_free_memory() -> bool:
    """Give free pages inside the heaps back to the kernel; True if any were."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))


def settle_heap() -> None:
    """Freeze what start-up allocated and collect garbage less often.

    Everything imported by then lives as long as the worker: out of the
    collector's sight it is not rescanned. Measured: p99 at one connection
    fell from 269 ms to 67 ms under load (collection pauses over a large heap).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
