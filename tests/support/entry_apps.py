"""An EntryApp on a temporary SQLite ledger with in-process scorers, for unit
tests of the request path (no server, no model)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from serving.entry import EntryApp
from serving.settings import load_settings

Scorer = Callable[[NDArray[np.float64]], Awaitable[NDArray[np.float64]]]


def entry_app(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    mode: str,
    scorer: Scorer,
    tags: Mapping[str, str],
) -> EntryApp:
    """Both variants scored by ``scorer``; the models described by ``tags``."""
    monkeypatch.setenv("CHURN_AB_LEDGER_PATH", str(tmp_path / "ledger.sqlite3"))
    monkeypatch.setenv("CHURN_AB_MODE", mode)
    return EntryApp(
        load_settings(),
        scorers={"v1": scorer, "v2": scorer},
        model_descriptions={v: {"tag": t} for v, t in tags.items()},
    )
