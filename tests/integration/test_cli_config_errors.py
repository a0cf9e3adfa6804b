"""``python -m serving config``, ``python -m ab_router`` and ``python -m
training``: configuration errors are one stderr line and a non-zero exit,
never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_ab_router_help_lists_the_config_command() -> None:
    result = _run(["-m", "ab_router", "--help"], {})
    assert result.returncode == 0
    assert "config" in result.stdout.split("positional arguments:")[1]


def test_ab_router_config_prints_what_serving_config_prints(tmp_path: Path) -> None:
    env = {"CHURN_AB_WEIGHTS": "v1=0.9,v2=0.1", "CHURN_AB_ADMIN_TOKEN": "s3cret"}
    # From another directory: the hand-over must find the serving package
    # beside this ab_router, not rely on the working directory.
    away = {**env, "PYTHONPATH": str(REPO_ROOT)}
    ours = _run(["-m", "ab_router", "config"], away, cwd=tmp_path)
    theirs = _run(["-m", "serving", "config"], env)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    rows = {line.split()[0]: line for line in ours.stdout.splitlines()}
    weights = rows["CHURN_AB_WEIGHTS"]
    assert '{"v1": 0.9, "v2": 0.1}' in weights and weights.endswith(" environment")
    assert rows["CHURN_AB_MODE"].endswith(" default")
    assert "s3cret" not in ours.stdout


def test_ab_router_config_passes_its_options_on() -> None:
    result = _run(["-m", "ab_router", "config", "--json"], {"CHURN_AB_MODE": "shadow"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["CHURN_AB_MODE"] == {"value": "shadow", "source": "environment"}


def test_ab_router_config_refuses_a_typo_in_one_line() -> None:
    result = _run(["-m", "ab_router", "config"], {"CHURN_AB_WIEGHTS": "v1=0.9"})
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in line


def _ledger_commands(tmp_path: Path) -> dict[str, list[str]]:
    return {
        "report": ["report", "--experiment", "x", "--out", str(tmp_path / "out")],
        "rollups": ["rollups", "--verify"],
        "archive": ["archive", "--older-than", "1", "--out", str(tmp_path / "out")],
    }


def _bad_ledger(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A ledger location of ``kind`` and the words its message must hold."""
    if kind == "not_a_database":
        path = tmp_path / "notes.sqlite3"
        path.write_text("a text file, not SQLite\n")
        return (
            path,
            f"the experiment ledger {path} could not be opened: file is not a database",
        )
    if kind == "directory":
        return tmp_path, f"--ledger {tmp_path}: a directory"
    return (
        tmp_path / "missing.sqlite3",
        f"--ledger {tmp_path / 'missing.sqlite3'}: no such file",
    )


@pytest.mark.parametrize("command", ["report", "rollups", "archive"])
@pytest.mark.parametrize("kind", ["not_a_database", "directory", "missing"])
def test_ab_router_on_an_unusable_ledger_is_one_line(
    tmp_path: Path, command: str, kind: str
) -> None:
    ledger, message = _bad_ledger(tmp_path, kind)
    argv = [*_ledger_commands(tmp_path)[command], "--ledger", str(ledger)]
    result = _run(["-m", "ab_router", *argv], {})
    assert result.returncode == 2
    assert _one_line(result.stderr) == f"error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("not_csv", "not a readable CSV file"),
    ],
)
def test_training_on_a_bad_data_path_is_one_line(
    tmp_path: Path, kind: str, message: str
) -> None:
    data = {"missing": tmp_path / "nope.csv", "directory": tmp_path}.get(kind)
    if data is None:
        data = tmp_path / "binary.csv"
        data.write_bytes(bytes(range(128, 256)))
    result = _run(["-m", "training", "--quick", "--no-save", "--data", str(data)], {})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("churn-train: error: ")
    assert str(data) in errors[0] and message in errors[0]
    assert "Traceback" not in result.stderr
