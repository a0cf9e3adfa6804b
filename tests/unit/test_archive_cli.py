"""``python -m ab_router archive`` on a real SQLite ledger: closed epochs out
to checked files, statistics kept, a restore re-verified."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pytest

from ab_router.cli import main
from ab_router.ledger import SqliteLedger
from tests.support.ledgers import CONFIG, admin_change, exposure


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    """Epoch 1 two days old and closed; epoch 2 current."""
    path = tmp_path / "ledger.sqlite3"
    ledger = SqliteLedger(path)
    state = ledger.ensure_experiment(CONFIG)
    old = [replace(exposure(), created_at=1.0e9 + i) for i in range(30)]
    ledger.record_exposures(old)
    for e in old[::2]:
        ledger.label_request(e.request_id, True)
    assert admin_change(ledger, state, new_epoch=True, kind="reset")
    ledger.record_exposures([exposure(epoch=2)])
    ledger.close()
    return path


def test_archive_then_restore(
    ledger_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "archive"
    ledger = SqliteLedger(ledger_path)
    stats_before = ledger.epoch_rollup("exp", 1)
    argv = ["archive", "--ledger", str(ledger_path), "--out", str(out)]
    assert main([*argv, "--older-than", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("archived 30 exposures of epoch 1 of 'exp' to ")
    (archive,) = out.iterdir()
    assert archive.name == "exp-epoch-1.jsonl.gz"
    with gzip.open(archive, "rt") as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 30 and sum(r["label"] == 1 for r in records) == 15
    assert ledger.exposures("exp", 1) == []
    assert ledger.epoch_rollup("exp", 1).labelled == stats_before.labelled
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert main([*argv, "--older-than", "1"]) == 0  # nothing left to do
    assert "nothing to archive" in capsys.readouterr().out

    restore = ["archive", "--ledger", str(ledger_path), "--restore", str(archive)]
    assert main(restore) == 0
    assert "restored 30 exposures of epoch 1" in capsys.readouterr().out
    assert len(ledger.exposures("exp", 1)) == 30
    assert main(["rollups", "--ledger", str(ledger_path), "--verify"]) == 0
    assert main(restore) == 2  # not an archive the ledger knows any more
    assert "not the recorded archive" in capsys.readouterr().err


def test_recent_or_current_epochs_are_kept(
    ledger_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["archive", "--ledger", str(ledger_path), "--out", str(tmp_path / "a")]
    assert main([*argv, "--older-than", "1000000"]) == 0  # epoch 1 is younger
    assert "nothing to archive" in capsys.readouterr().out
    assert main([*argv, "--older-than", "0"]) == 0
    # Epoch 2 is current: never archived, however old.
    assert "epoch 1 " in capsys.readouterr().out
    assert len(SqliteLedger(ledger_path).exposures("exp", 2)) == 1


def test_bad_archive_options_are_usage_errors(
    ledger_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["archive", "--ledger", str(ledger_path)]
    assert main([*argv, "--older-than", "1"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([*argv, "--older-than", "-1", "--out", "x"]) == 2
    assert "at least 0" in capsys.readouterr().err
