"""Single-row latency before and after a burst of 10k-row calls (repro driver).

``python -m benchmarks.repro.drive URL``: 200 single-row calls, then 20
calls of 10,000 rows one after another, then single-row calls again right
after, 20 s after and 60 s after. Standard library only.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request

ONE = json.dumps({"rows": [[1.0, 2.0]]}).encode()
BIG = json.dumps({"rows": [[1.0, 2.0]] * 10_000}).encode()


def post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, body, {"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def singles(url: str, label: str, n: int = 200) -> None:
    ms = sorted(post(url, ONE) for _ in range(n))
    p50, p99 = ms[n // 2], ms[int(n * 0.99)]
    print(f"{time.time():.3f} {label}: p50 {p50:.2f} ms  p99 {p99:.2f} ms", flush=True)


def main(url: str) -> None:
    singles(url, "before")
    started = time.perf_counter()
    for _ in range(20):
        post(url, BIG)
    took = time.perf_counter() - started
    print(f"{time.time():.3f} burst: 20 x 10k rows in {took:.1f} s", flush=True)
    singles(url, "right after")
    time.sleep(20)
    singles(url, "20 s after")
    time.sleep(40)
    singles(url, "60 s after")


if __name__ == "__main__":
    main(sys.argv[1])
