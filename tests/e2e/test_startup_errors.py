"""A real ``bentoml serve`` refuses a bad configuration in one stderr line.

The same path the container's entrypoint and ``make serve`` take: both end in
``bentoml serve``, which imports ``service.py`` in its own process first.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.processes import free_port, stop_process_tree
from tests.support.bento_server import (
    BENTOML,
    REPO_ROOT,
    private_home,
    start_bento_server,
)

# BentoML printed the same messages as the last of 55-58 traceback lines.
MAX_STDERR_LINES = 3


@dataclass
class Refusal:
    returncode: int
    stdout: str
    stderr: str

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _serve_expecting_exit(
    trained_home: Path, workdir: Path, env: dict[str, str], *extra: str
) -> Refusal:
    home = private_home(trained_home, workdir / "bentoml-home")
    server_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "CHURN_AB_LEDGER_PATH": str(workdir / "ledger.sqlite3"),
        "CHURN_AB_ENTRY_WORKERS": "1",
        **env,
    }
    command = [str(BENTOML), "serve", "service:ChurnAB", "--host", "127.0.0.1"]
    command += ["--port", str(free_port()), *extra]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=server_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        stop_process_tree(process)  # type: ignore[arg-type]
        stdout, stderr = process.communicate()
        pytest.fail(f"bentoml serve started instead of refusing:\n{stderr[-2000:]}")
    return Refusal(process.returncode, stdout, stderr)


def _assert_refused_in_one_line(refusal: Refusal, message: str) -> None:
    assert refusal.returncode == 2, refusal.stderr
    lines = refusal.stderr_lines()
    assert len(lines) <= MAX_STDERR_LINES, refusal.stderr
    assert any(message in line for line in lines), refusal.stderr
    assert "Traceback" not in refusal.stderr


@pytest.mark.parametrize(
    ("env", "message", "also"),
    [
        pytest.param(
            {"CHURN_AB_WIEGHTS": "v1=0.9,v2=0.1"},
            "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?",
            (),
            id="typo_in_a_setting_name_with_a_suggestion",
        ),
        pytest.param(
            {"CHURN_AB_WEIGHTS": "v1=0.8,v2=0.1"},
            "invalid configuration: CHURN_AB_WEIGHTS: weights must sum to 1, "
            "they sum to 0.9",
            (),
            id="weights_not_summing_to_one",
        ),
        pytest.param(
            {"CHURN_AB_V2_MODEL": "churn_v2:nope"},
            "model(s) churn_v2:nope not found in the BentoML model store",
            ("python -m training",),
            id="missing_model_with_how_to_train",
        ),
    ],
)
def test_bad_configuration_is_refused_in_one_line(
    trained_home: Path,
    tmp_path: Path,
    env: dict[str, str],
    message: str,
    also: tuple[str, ...],
) -> None:
    refusal = _serve_expecting_exit(trained_home, tmp_path, env)
    _assert_refused_in_one_line(refusal, message)
    for text in also:
        assert text in refusal.stderr


def _unusable_ledger(workdir: Path, kind: str) -> tuple[Path, str]:
    """A ledger path of ``kind`` and the words the refusal must hold."""
    variable = "invalid configuration: CHURN_AB_LEDGER_PATH: "
    if kind == "directory":
        path = workdir / "ledgers"
        path.mkdir()
        return path, f"{variable}{path} is a directory"
    if kind == "under_a_file":
        parent = workdir / "a-file"
        parent.write_text("")
        return parent / "ledger.sqlite3", f"{variable}{parent} is not a directory"
    if kind == "unwritable":
        # Root writes to a mode-555 directory; no one may create files in a
        # process's /proc folder, so root gets that instead.
        parent = Path("/proc/1") if os.geteuid() == 0 else workdir / "read-only"
        if parent != Path("/proc/1"):
            parent.mkdir(mode=0o555)
        return parent / "ledger.sqlite3", f"{variable}{parent} is not writable"
    path = workdir / "notes.sqlite3"
    path.write_text("a text file, not SQLite\n")
    return path, (
        f"{variable}the experiment ledger {path} could not be opened: "
        "file is not a database"
    )


@pytest.mark.parametrize(
    "kind",
    [
        "directory",
        "under_a_file",
        "unwritable",
        # Passes every path check; only opening it (on_deployment) fails.
        "not_a_database",
    ],
)
def test_an_unusable_ledger_location_is_refused_in_one_line(
    trained_home: Path, tmp_path: Path, kind: str
) -> None:
    ledger, message = _unusable_ledger(tmp_path, kind)
    refusal = _serve_expecting_exit(
        trained_home, tmp_path, {"CHURN_AB_LEDGER_PATH": str(ledger)}
    )
    _assert_refused_in_one_line(refusal, message)
    if kind == "not_a_database":
        assert ledger.read_text() == "a text file, not SQLite\n"


def test_verbose_shows_the_traceback(trained_home: Path, tmp_path: Path) -> None:
    refusal = _serve_expecting_exit(
        trained_home, tmp_path, {"CHURN_AB_WEIGHTS": "v1=0.8,v2=0.1"}, "--verbose"
    )
    assert refusal.returncode != 0
    assert "Traceback" in refusal.stderr
    assert "CHURN_AB_WEIGHTS: weights must sum to 1" in refusal.stderr


def test_allowed_unknown_setting_starts_with_one_warning(
    trained_home: Path, tmp_path: Path
) -> None:
    server = start_bento_server(
        trained_home,
        tmp_path,
        env={"CHURN_AB_WIEGHTS": "v1=0.9,v2=0.1", "CHURN_AB_ALLOW_UNKNOWN": "1"},
        entry_workers=1,
    )
    # Ready means every worker has imported service.py: all had their chance
    # to warn.
    try:
        log = server.log()
    finally:
        leftover = server.stop()
    assert not leftover
    warnings = [line for line in log.splitlines() if "CHURN_AB_WIEGHTS" in line]
    assert len(warnings) == 1, log[-3000:]
    assert "did you mean CHURN_AB_WEIGHTS?" in warnings[0]
    assert "WARNING" in warnings[0]
