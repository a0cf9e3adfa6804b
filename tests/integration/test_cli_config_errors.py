"""``python -m serving config`` and ``python -m training``: configuration errors are
one stderr line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.bento_server import REPO_ROOT, sample_csv

# Hides the optional PostgreSQL driver, as on an install without the extra.
WITHOUT_PSYCOPG = "import sys; sys.modules['psycopg'] = None; import runpy; "


def _run(
    args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_AB_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_config_command_refuses_a_typo_in_one_line() -> None:
    result = _run(["-m", "serving", "config"], {"CHURN_AB_WIEGHTS": "v1=0.9"})
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in line


def test_config_command_refuses_a_bad_value_in_one_line() -> None:
    result = _run(["-m", "serving", "config"], {"CHURN_AB_MODE": "bogus"})
    assert result.returncode == 2
    assert "CHURN_AB_MODE" in _one_line(result.stderr)
    assert result.stdout == ""


def test_report_on_postgres_without_the_extra_is_one_line(tmp_path: Path) -> None:
    argv = ["report", "--ledger", "postgresql://u:pw@127.0.0.1:1/db"]
    argv += ["--experiment", "x", "--out", str(tmp_path)]
    code = (
        WITHOUT_PSYCOPG + f"sys.argv = ['ab_router', *{argv!r}]; "
        "runpy.run_module('ab_router', run_name='__main__')"
    )
    result = _run(["-c", code], {})
    assert result.returncode == 2
    assert "'postgres' extra" in _one_line(result.stderr)


def test_training_names_the_invalid_variable() -> None:
    result = _run(
        ["-m", "training", "--no-save"], {"CHURN_DOWNLOAD_TIMEOUT_SECONDS": "-1"}
    )
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("churn-train: error: invalid setting ")
    assert "CHURN_DOWNLOAD_TIMEOUT_SECONDS" in line


def test_training_into_an_unusable_model_store_is_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = _run(
        ["-m", "training", "--quick", "--data", str(sample_csv())],
        {"BENTOML_HOME": str(not_a_dir / "home")},
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("churn-train: error: ")
    assert str(not_a_dir) in errors[0]
    assert "Traceback" not in result.stderr
