"""``python -m ab_router rollups`` runs as a module: the exit status and the
error line of a real process (the arguments: tests/unit/test_rollups_cli.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.ledgers import labelled_sqlite_ledger, tamper_v2_requests


def test_the_command_runs_as_a_module(tmp_path: Path) -> None:
    ledger_path = labelled_sqlite_ledger(tmp_path / "ledger.sqlite3")
    tamper_v2_requests(ledger_path)
    done = subprocess.run(
        [sys.executable, "-m", "ab_router", "rollups", "--ledger", str(ledger_path),
         "--verify"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "traffic_cells" in done.stderr
