"""The CLI fails with one clear line (no traceback) on expected errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import main
from training.sample import REPO_ROOT


def test_data_error_exits_non_zero_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customerID,gender\nC1,Female\n")

    code = main(["--data", str(bad), "--no-save", "--quick"])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("churn-train: error: ")
    assert "column 'tenure'" in err[-1]
    assert not any("Traceback" in line for line in err)


def test_offline_without_data_names_both_options(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "CHURN_DATA"}
    env |= {
        "CHURN_DATA_URL": f"http://127.0.0.1:{port}/churn.csv",
        "CHURN_CACHE_DIR": str(tmp_path / "cache"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "training", "--no-save"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "--data" in last and "CHURN_DATA" in last
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_invalid_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_DATA_SHA256", "xyz")
    assert main(["--no-save"]) == 1
    assert "CHURN_DATA_SHA256" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for option in ("--data", "--quick", "--no-save", "--seed", "CHURN_DATA"):
        assert option in out
