"""A served model whose faults a test switches on and off at run time.

``save_faulty_copy`` stores a copy of a trained pipeline whose estimator is a
``SwitchableEstimator``: before every ``predict_proba`` it reads a switch file
and answers normally (``ok``), raises (``raise``) or stalls for ``HANG_S``
first (``hang``). Served through ``CHURN_AB_V2_MODEL``, it faults the same way
in a model service and inside an entry worker, so one test covers both
placements. The pickle refers to this module: the server imports it from the
repository root it runs in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

HANG_S = 3.0
MODES = ("ok", "raise", "hang")


class InjectedModelFault(RuntimeError):
    """Raised by a model switched to ``raise``."""


class SwitchableEstimator:
    def __init__(self, estimator: Any, switch: Path) -> None:
        self.estimator = estimator
        self.switch = switch
        self.classes_ = estimator.classes_

    def predict_proba(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        mode = self.switch.read_text().strip()
        if mode == "raise":
            raise InjectedModelFault("model fault injected by the test")
        if mode == "hang":
            time.sleep(HANG_S)
        return np.asarray(self.estimator.predict_proba(features))


def set_mode(switch: Path, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    switch.write_text(mode)


def save_faulty_copy(
    bentoml_home: Path, source_tag: str, name: str, switch: Path
) -> str:
    """Store ``name``: the model of ``source_tag`` behind a switch; its tag.

    In a subprocess: BentoML fixes its home at first use in a process.
    """
    set_mode(switch, "ok")
    script = (
        "import bentoml, sys\n"
        "from pathlib import Path\n"
        "from churn_features.encoding import MODEL_STEP\n"
        "from tests.support.faulty_model import SwitchableEstimator\n"
        "source = bentoml.models.get(sys.argv[1])\n"
        "pipeline = bentoml.sklearn.load_model(source)\n"
        "name, estimator = pipeline.steps[-1]\n"
        "assert name == MODEL_STEP, name\n"
        "switchable = SwitchableEstimator(estimator, Path(sys.argv[3]))\n"
        "pipeline.steps[-1] = (name, switchable)\n"
        "saved = bentoml.sklearn.save_model(sys.argv[2], pipeline, "
        "labels=dict(source.info.labels), metadata=dict(source.info.metadata))\n"
        "print(saved.tag)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, source_tag, name, str(switch)],
        cwd=repo,
        env={**os.environ, "BENTOML_HOME": str(bentoml_home)},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return done.stdout.strip().splitlines()[-1]
