"""Cost of the API-key check and the rate limit per request, in-process.

``python -m benchmarks.access_check`` (also run by ``make bench``) times what
``RequestGuardMiddleware`` adds to a guarded request: ``authenticate`` (find
the Authorization header, HMAC the presented key, look it up) and ``admit``
(the token bucket), with 1, 10 and 100 keys in the file. It also times the
first sight of a key (verified against every entry) and, for the choice of
hash, one scrypt verification. Prints a Markdown table of medians; the target
is under 10 µs per request.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ab_router.api_keys import add_key
from serving.access import AccessControl

TARGET_US = 10.0


def _median_us(call: Callable[[], Any], repeat: int = 20_000) -> float:
    for _ in range(1000):
        call()
    runs: list[float] = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        runs.append((time.perf_counter() - started) / repeat * 1e6)
    return statistics.median(runs)


def _headers(key: str) -> list[tuple[bytes, bytes]]:
    # What a client sends: a handful of headers, the key among them.
    return [
        (b"host", b"127.0.0.1:3000"),
        (b"user-agent", b"python-httpx/0.28"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
        (b"content-length", b"412"),
        (b"authorization", f"Bearer {key}".encode()),
    ]


def _fresh_first_sight(access: AccessControl, key: str) -> Callable[[], Any]:
    headers = _headers(key)

    def call() -> Any:
        access._verified.clear()  # measure the verification, not the cache
        return access.authenticate(headers)

    return call


def measure(keys_count: int, directory: Path) -> dict[str, float]:
    path = directory / f"keys-{keys_count}"
    keys = [add_key(path, f"key-{i}", rate=1e9, burst=1e9) for i in range(keys_count)]
    access = AccessControl(path, entry_workers=2, count=False)
    headers = _headers(keys[-1])
    name = access.authenticate(headers)

    def both() -> None:
        access.admit(access.authenticate(headers), 1, "Authorization")

    return {
        "authenticate (cached)": _median_us(lambda: access.authenticate(headers)),
        "admit (token bucket)": _median_us(
            lambda: access.admit(name, 1, "Authorization")
        ),
        "authenticate + admit": _median_us(both),
        "first sight of a key": _median_us(
            _fresh_first_sight(access, keys[-1]), repeat=200
        ),
    }


def shared_bucket_us(directory: Path) -> float:
    """What one token bucket shared by all entry workers would cost: an
    exclusive lock on the instance's file, read, refill, write, unlock."""
    layout = struct.Struct("dd")  # tokens, updated
    path = directory / "buckets"
    path.write_bytes(layout.pack(10.0, time.monotonic()))
    with path.open("r+b") as file:
        shared = mmap.mmap(file.fileno(), layout.size)
        fd = file.fileno()

        def take() -> bool:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                tokens, updated = layout.unpack_from(shared, 0)
                now = time.monotonic()
                tokens = min(1e9, tokens + (now - updated) * 1e9)
                admitted = tokens >= 1
                layout.pack_into(shared, 0, tokens - admitted, now)
                return admitted
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)

        cost = _median_us(take)
        shared.close()
    return cost


def scrypt_us() -> float:
    salt, key = b"s" * 16, b"cak_" + b"k" * 43

    def once() -> bytes:
        return hashlib.scrypt(key, salt=salt, n=2**14, r=8, p=1)

    once()
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        once()
        runs.append((time.perf_counter() - started) * 1e6)
    return statistics.median(runs)


def main() -> None:
    logging.getLogger("churn_ab.access").setLevel(logging.ERROR)  # key-file chatter
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        open_api = AccessControl(None, entry_workers=2, count=False)
        no_keys = _median_us(lambda: open_api.authenticate(_headers("x")))
        results = {n: measure(n, directory) for n in (1, 10, 100)}
        shared = shared_bucket_us(directory)
    rows = list(next(iter(results.values())))
    print("API key check, µs per request (median of 7 runs)")
    print(f"load average {[round(x, 2) for x in os.getloadavg()]}\n")
    print("| step | " + " | ".join(f"{n} key(s)" for n in results) + " |")
    print("| --- |" + " ---: |" * len(results))
    print(f"| no key file (API open) | {no_keys:.2f} |" + " |" * (len(results) - 1))
    for row in rows:
        cells = " | ".join(f"{results[n][row]:.2f}" for n in results)
        print(f"| {row} | {cells} |")
    print(
        f"| admit with one bucket shared by all workers (mmap + lockf), "
        f"for comparison | {shared:.2f} |" + " |" * (len(results) - 1)
    )
    scrypt = scrypt_us()
    print(
        f"| one scrypt verification (n=2^14, r=8), for comparison | {scrypt:,.0f} |"
        + " |" * (len(results) - 1)
    )
    worst = max(r["authenticate + admit"] for r in results.values())
    verdict = "within" if worst < TARGET_US else "OVER"
    print(
        f"\nper request (cached key + bucket): {worst:.2f} µs, {verdict} the "
        f"{TARGET_US:g} µs target"
    )


if __name__ == "__main__":
    main()
