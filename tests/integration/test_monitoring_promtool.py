"""promtool accepts the Prometheus config and rules, and the rules' unit tests
(prometheus/tests/*.yml) pass. Needs the Debian package `prometheus`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.prometheus_server import REPO_ROOT, RULE_FILES, RULES_DIR

PROMETHEUS_DIR = REPO_ROOT / "prometheus"


def promtool(
    *args: str | Path, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not on PATH: apt-get install -y prometheus"
    return subprocess.run(
        [binary, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_rule_files_are_valid() -> None:
    result = promtool("check", "rules", *(RULES_DIR / name for name in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "test_file",
    sorted(p.name for p in (PROMETHEUS_DIR / "tests").glob("*.yml")),
)
def test_promtool_rule_unit_tests_pass(test_file: str) -> None:
    result = promtool("test", "rules", PROMETHEUS_DIR / "tests" / test_file)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    # Guard against a test file that can't fail (e.g. rules not loaded).
    source = (PROMETHEUS_DIR / "tests" / "churn-ab.alerts.test.yml").read_text()
    broken = source.replace("is 487.5ms, above", "is 1s, above")
    assert broken != source
    mutated = PROMETHEUS_DIR / "tests" / "churn-ab.alerts.test.yml"
    copy = tmp_path / "mutated.test.yml"
    copy.write_text(
        broken.replace("../rules/", f"{(mutated.parent.parent / 'rules').as_posix()}/")
    )
    result = promtool("test", "rules", copy)
    assert result.returncode != 0
    assert "ChurnAbVariantLatencyHigh" in result.stdout + result.stderr


def test_make_check_monitoring_from_the_repo_root() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-f", "grafana/mixin.mk", "check-monitoring"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
