"""``python -m ab_router report`` against a real SQLite ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ab_router.cli import main
from ab_router.config import ExperimentConfig
from ab_router.ledger import SqliteLedger
from ab_router.simulate import SyntheticWorld, synthetic_exposures
from ab_router.statistics import DecisionConfig, summarize_experiment


def test_report_from_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.sqlite"
    weights = {"v1": 0.5, "v2": 0.5}
    rows = synthetic_exposures(
        3_000,
        world=SyntheticWorld(brier_difference=-0.02),
        weights=weights,
        label_fraction=0.8,
        seed=31,
        experiment="churn",
        epoch=1,
    )
    ledger = SqliteLedger(db)
    try:
        ledger.ensure_experiment(
            ExperimentConfig(name="churn", salt="s", weights=weights)
        )
        ledger.record_exposures(rows)
        stored = ledger.exposures("churn", 1)
    finally:
        ledger.close()
    assert len(stored) == len(rows)

    out = tmp_path / "report"
    rc = main(
        ["report", "--ledger", str(db), "--experiment", "churn", "--out", str(out)]
    )
    assert rc == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == out / "report.md"
    text = path.read_text(encoding="utf-8")
    expected = summarize_experiment(stored, weights, DecisionConfig())
    assert f"**Verdict: {expected.decision.verdict.value}**" in text
    assert expected.decision.message in text
    assert "epoch 1" in text


def test_report_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.sqlite"
    args = ["report", "--experiment", "churn", "--out", str(tmp_path / "o")]
    assert main([*args, "--ledger", str(missing)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not missing.exists()  # the CLI must not create an empty ledger

    db = tmp_path / "ledger.sqlite"
    SqliteLedger(db).close()
    assert main([*args, "--ledger", str(db)]) == 2
    assert "--experiment 'churn'" in capsys.readouterr().err


def test_report_cli_rejects_bad_decision_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.sqlite"
    ledger = SqliteLedger(db)
    ledger.ensure_experiment(
        ExperimentConfig(name="churn", salt="s", weights={"v1": 0.5, "v2": 0.5})
    )
    ledger.record_exposures(
        [replace(e, experiment="churn") for e in synthetic_exposures(50, seed=1)]
    )
    ledger.close()
    rc = main(
        [
            "report",
            "--ledger",
            str(db),
            "--experiment",
            "churn",
            "--out",
            str(tmp_path / "o"),
            "--mde",
            "-1",
        ]
    )
    assert rc == 2 and "mde" in capsys.readouterr().err
