"""``ab_router rollups --verify | --rebuild`` on a real SQLite ledger, in-process
(as ``python -m ab_router``: tests/integration/test_rollups_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ab_router.cli import main
from ab_router.ledger import SqliteLedger
from tests.support.ledgers import labelled_sqlite_ledger, tamper_v2_requests


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return labelled_sqlite_ledger(tmp_path / "ledger.sqlite3")


def test_verify_passes_on_a_consistent_ledger(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert capsys.readouterr().out.strip() == "rollups agree with the rows"


def test_verify_fails_naming_the_first_mismatch_and_rebuild_repairs(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper_v2_requests(ledger_path)
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("error: rollups differ from the rows: traffic_cells")
    assert "'v2'" in err and "requests is 3, the rows give 2" in err
    assert main(["rollups", "--ledger", str(ledger_path), "--rebuild"]) == 0
    assert capsys.readouterr().out.strip() == "rollups rebuilt from the rows"
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert SqliteLedger(ledger_path).epoch_counts("exp", 1) == (3, 1)


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
