"""Issue #13's targets: each churn-ab placement against its framework floor.

Every comparison is with the floor served in the **same** interleaved run:
``services`` (model services, adaptive batching) against ``echo-hop`` (the
same hop to a model service that returns constants), ``inline`` (models in
the entry worker) against ``echo`` (a Bento that validates and answers a
constant). Reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FLOOR = {"services": "echo-hop", "inline": "echo"}
CPU_ABOVE_FLOOR_MS = 0.25  # both placements, at c=16


@dataclass(frozen=True)
class Check:
    label: str
    value: Callable[[dict[str, Any]], float | None]  # from ``numbers``
    at_most: float | None  # met when value <= at_most ...
    at_least: float | None  # ... or value >= at_least
    target: str
    unit: str = ""

    def met(self, value: float) -> bool:
        if self.at_most is not None:
            return value <= self.at_most
        return self.at_least is not None and value >= self.at_least


def _get(numbers: dict[str, Any], key: str) -> float | None:
    value = numbers.get(key)
    return None if value is None else float(value)


def _own(key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda n: _get(n, key)


def _ratio(key: str, floor_key: str | None = None) -> Callable[..., float | None]:
    def value(n: dict[str, Any]) -> float | None:
        mine, floor = _get(n, key), _get(n, floor_key or "floor_" + key)
        return None if mine is None or not floor else mine / floor

    return value


def _minus(key: str) -> Callable[[dict[str, Any]], float | None]:
    def value(n: dict[str, Any]) -> float | None:
        mine, floor = _get(n, key), _get(n, "floor_" + key)
        return None if mine is None or floor is None else mine - floor

    return value


SERVICES = (
    Check("c=16 throughput", _ratio("rps16"), None, 0.75, "≥ 0.75× echo-hop", "×"),
    Check("c=1 p50 above echo-hop", _minus("p50_1"), 0.3, None, "≤ +0.3 ms", " ms"),
    Check("c=1 p99", _ratio("p99_1"), 1.5, None, "≤ 1.5× echo-hop", "×"),
    Check("batch µs/row", _ratio("batch"), 1.25, None, "≤ 1.25× echo-hop", "×"),
    Check(
        "batch µs/row",
        _ratio("batch", "original_batch"),
        0.999,
        None,
        "below the prototype's",
        "× the prototype",
    ),
)
INLINE = (
    Check("c=16 throughput", _ratio("rps16"), None, 0.5, "≥ 0.5× echo", "×"),
    Check("c=1 p50", _ratio("p50_1"), 2.0, None, "≤ 2× echo", "×"),
    Check("c=1 p99", _own("p99_1"), 2.0, None, "≤ 2 ms", " ms"),
    Check("batch µs/row", _ratio("batch"), 1.5, None, "≤ 1.5× echo", "×"),
    Check("serving-tree PSS idle", _ratio("pss"), 1.3, None, "≤ 1.3× echo", "×"),
)
BOTH = (
    Check(
        "CPU per request above the floor at c=16",
        _minus("cpu16"),
        CPU_ABOVE_FLOOR_MS,
        None,
        f"≤ {CPU_ABOVE_FLOOR_MS} ms",
        " ms",
    ),
    Check("non-2xx and socket errors", _own("errors"), 0, None, "0"),
)


def numbers(report: dict[str, Any], name: str, floor: str) -> dict[str, Any]:
    """The figures the checks read, for server ``name`` and its ``floor``."""
    s, batch, memory = report["summary"], report["batch"], report["memory"]
    out: dict[str, Any] = {}
    for prefix, server in (("", name), ("floor_", floor)):
        hi, lo = s.get(f"{server}@16"), s.get(f"{server}@1")
        if hi:
            out[prefix + "rps16"] = hi["rps"]
            out[prefix + "cpu16"] = hi["server_cpu_ms_per_req"]
        if lo:
            out[prefix + "p50_1"] = lo["p50_ms"]
            out[prefix + "p99_1"] = lo["p99_ms"]
        if server in batch:
            out[prefix + "batch"] = batch[server]["us_per_row"]
        if server in memory:
            out[prefix + "pss"] = memory[server]["idle_pss_mb"]
    if "original" in batch:
        out["original_batch"] = batch["original"]["us_per_row"]
    runs = [v for k, v in s.items() if k.startswith(name + "@")]
    out["errors"] = sum(r["non_2xx"] + r["socket_errors"] for r in runs)
    return out


def check_placements(report: dict[str, Any]) -> list[str]:
    """One line per target and churn-ab server of the run: met or not met."""
    lines = []
    for name, placement in report.get("placements", {}).items():
        floor = FLOOR[placement]
        if floor not in report["servers"]:
            lines.append(f"{name} ({placement}): floor {floor} not served, no targets")
            continue
        n = numbers(report, name, floor)
        checks = (SERVICES if placement == "services" else INLINE) + BOTH
        for check in checks:
            value = check.value(n)
            if value is None:
                lines.append(f"{name} ({placement}): {check.label}: not measured")
                continue
            verdict = "met" if check.met(value) else "NOT met"
            lines.append(
                f"{name} ({placement}): {check.label} {value:.2f}{check.unit} "
                f"(target {check.target}): {verdict}"
            )
    return lines
