"""The rollback gauge reads the transitions only when the state version moved."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from serving.live_statistics import LiveStatistics


@dataclass
class _Ledger:
    kinds: list[str]
    reads: int = 0

    def transitions(self, experiment: str) -> list[SimpleNamespace]:
        self.reads += 1
        return [SimpleNamespace(kind=k) for k in self.kinds]


@dataclass
class _State:
    version: int = 1
    config: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="e"))

    def current(self) -> _State:
        return self


def test_rollbacks_are_read_once_per_state_version() -> None:
    ledger = _Ledger(["weights", "canary_rollback"])
    state = _State()
    statistics = LiveStatistics(ledger, state, None)  # type: ignore[arg-type]

    assert [statistics.canary_rollbacks() for _ in range(100)] == [1] * 100
    assert ledger.reads == 1

    ledger.kinds.append("canary_rollback")
    state.version = 2  # every transition bumps the version
    assert statistics.canary_rollbacks() == 2
    assert statistics.canary_rollbacks() == 2
    assert ledger.reads == 2
