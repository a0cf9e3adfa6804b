"""``python -m ab_router rollups --verify | --rebuild`` on a real SQLite ledger."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ab_router.cli import main
from ab_router.ledger import SqliteLedger
from tests.support.ledgers import CONFIG, exposure


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    ledger.ensure_experiment(CONFIG)
    rows = [exposure("v1"), exposure("v2"), exposure("v2")]
    ledger.record_exposures(rows)
    ledger.label_request(rows[1].request_id, True)
    ledger.close()
    return path


def _tamper(path: Path) -> None:
    """What a bug (or a hand-made UPDATE) could leave behind."""
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE traffic_cells SET requests = requests + 1 WHERE variant = 'v2'"
        )
    connection.close()


def test_verify_passes_on_a_consistent_ledger(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert capsys.readouterr().out.strip() == "rollups agree with the rows"


def test_verify_fails_naming_the_first_mismatch_and_rebuild_repairs(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(ledger_path)
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: rollups differ from the rows: traffic_cells")
    assert "'v2'" in err and "requests is 3, the rows give 2" in err
    assert main(["rollups", "--ledger", str(ledger_path), "--rebuild"]) == 0
    assert capsys.readouterr().out.strip() == "rollups rebuilt from the rows"
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert SqliteLedger(ledger_path).epoch_counts("exp", 1) == (3, 1)


def test_the_command_runs_as_a_module(ledger_path: Path) -> None:
    _tamper(ledger_path)
    done = subprocess.run(
        [sys.executable, "-m", "ab_router", "rollups", "--ledger", str(ledger_path),
         "--verify"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "traffic_cells" in done.stderr


def test_a_missing_ledger_or_action_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite3"
    assert main(["rollups", "--ledger", str(missing), "--verify"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not missing.exists()
    with pytest.raises(SystemExit) as info:
        main(["rollups", "--ledger", str(missing)])
    assert info.value.code == 2
