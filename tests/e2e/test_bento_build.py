"""`bentoml build` makes a Bento that serves, pinned to what trained the models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import sklearn
import yaml

from churn_features.schema import EXAMPLE_CUSTOMER
from tests.support.bento_server import BENTOML, REPO_ROOT, start_bento_server

CONSTRAINTS = REPO_ROOT / "constraints.txt"


def pinned(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_bentofile_pins_agree_with_constraints_and_the_trained_models(
    trained_home: Path,
) -> None:
    bentofile = yaml.safe_load((REPO_ROOT / "bentofile.yaml").read_text())
    bento_pins = pinned(bentofile["python"]["packages"])
    constraint_pins = pinned(CONSTRAINTS.read_text().splitlines())
    for package, version in bento_pins.items():
        assert constraint_pins.get(package) == version, package
    assert bento_pins["scikit-learn"] == sklearn.__version__
    # POST /explain needs the explain extra in the image.
    assert {"shap", "numba", "llvmlite", "slicer"} <= set(bento_pins)
    metadata = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bentoml, json; m = bentoml.models.get('churn_v1:latest');"
            "print(json.dumps(m.info.metadata['library_versions']))",
        ],
        env={**os.environ, "BENTOML_HOME": str(trained_home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f'"{bento_pins["scikit-learn"]}"' in metadata.stdout
    baked = {env["name"] for env in bentofile.get("envs", [])}
    assert "CHURN_AB_ADMIN_TOKEN" not in baked  # a secret is never baked in


def test_build_then_serve_the_bento_by_tag(trained_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(trained_home)}
    build = subprocess.run(
        [str(BENTOML), "build", "--output", "tag"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    tag = build.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    assert tag.startswith("churn-ab:")
    listing = subprocess.run(
        [str(BENTOML), "get", tag, "-o", "yaml"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "churn_v1" in listing and "churn_v2" in listing
    server = start_bento_server(trained_home, tmp_path, target=tag)
    try:
        answer = httpx.post(f"{server.url}/predict", json=EXAMPLE_CUSTOMER, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] in {"v1", "v2"}
    finally:
        assert not server.stop()
