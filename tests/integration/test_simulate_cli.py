"""``python -m ab_router simulate`` prints what run_monitoring computes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ab_router.cli import main
from ab_router.simulate import MonitoringConfig, SyntheticWorld, run_monitoring
from ab_router.statistics import DecisionConfig


def test_simulate_json_matches_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "simulate",
        "--runs",
        "60",
        "--horizon",
        "1500",
        "--check-every",
        "25",
        "--effect",
        "-0.02",
        "--seed",
        "7",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    base = MonitoringConfig(
        runs=60, horizon=1_500, check_every=25, seed=7, decision=DecisionConfig()
    )
    aa = run_monitoring(base)
    ab = run_monitoring(
        MonitoringConfig(
            runs=60,
            horizon=1_500,
            check_every=25,
            seed=8,
            world=SyntheticWorld(brier_difference=-0.02),
        )
    )
    assert out["aa"]["anytime"]["winners"] == aa.anytime.winners
    assert out["aa"]["naive_peeking"]["winners"] == aa.naive_peeking.winners
    assert out["ab"]["anytime"]["winners"] == ab.anytime.winners
    assert out["ab"]["true_brier_difference"] == pytest.approx(-0.02)


def test_python_dash_m_runs_the_table() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ab_router",
            "simulate",
            "--runs",
            "30",
            "--horizon",
            "800",
            "--design",
            "shadow",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "A/A (no difference)" in proc.stdout and "A/B" in proc.stdout
    assert "naive z-test, peeked at every look" in proc.stdout


def test_simulate_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--alpha", "1.5"]) == 2
    assert "alpha" in capsys.readouterr().err
