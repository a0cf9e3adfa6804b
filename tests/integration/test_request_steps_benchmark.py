"""``python -m benchmarks.request_steps`` still runs against the real parts.

It builds the entry's own objects by hand, so a changed constructor breaks it
without any server test noticing; this runs it for real on a tiny budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_request_steps_prints_a_row_per_step(trained_home: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(trained_home)}
    command = [sys.executable, "-m", "benchmarks.request_steps"]
    done = subprocess.run(
        [*command, "--batch-rows", "7", "--budget-s", "0.001"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| step | /predict µs | /predict_batch (7) µs/row |")
    steps = [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]]
    assert steps[0] == "assignment (sticky hash)"
    assert steps[-1] == "whole Predictor.predict"
    assert len(steps) == 10
