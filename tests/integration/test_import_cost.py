"""What importing ``service.py`` loads, in a fresh interpreter.

Every process of a ``bentoml serve`` imports ``service.py``: the arbiter,
each entry worker and each model service worker. Only a process that loads a
model needs scikit-learn (and the pandas it pulls in), and only one computing
a p-value needs scipy; together they cost each process ~1.2 s of CPU and
~90 MB (PSS) at start, so the import must not load them. A subprocess, because this
test session has long since imported all three.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.bento_server import PLACEMENTS, REPO_ROOT, placement_env

HEAVY = ("sklearn", "scipy", "pandas")

IMPORT_ONLY = f"""
import json, sys
import service
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""

# A model worker's path: the lazily imported scorer must still load and score.
SCORE_ONE_ROW = f"""
import json, sys
import bentoml
import service
from churn_features.encoding import records_to_codes
from churn_features.schema import EXAMPLE_CUSTOMER
from serving.model_runtime.store import load_scorer
scorer = load_scorer(bentoml.models.get("churn_v1:latest"))
scores = scorer.score(records_to_codes([EXAMPLE_CUSTOMER]))
loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"shape": list(scores.shape), "loaded": loaded}}))
"""


def _run(code: str, home: Path, tmp_path: Path, placement: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_AB_")}
    env = {
        **clean,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "CHURN_AB_LEDGER_PATH": str(tmp_path / "ledger.sqlite3"),
        **placement_env(placement),
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_importing_the_service_loads_no_sklearn_scipy_or_pandas(
    trained_home: Path, tmp_path: Path, placement: str
) -> None:
    # Inline entry workers load sklearn too, but in __init__, not at import.
    loaded = json.loads(_run(IMPORT_ONLY, trained_home, tmp_path, placement))
    assert loaded == []


def test_a_model_worker_still_loads_and_scores_its_model(
    trained_home: Path, tmp_path: Path
) -> None:
    answer = json.loads(_run(SCORE_ONE_ROW, trained_home, tmp_path, "services"))
    assert answer["shape"] == [1, 2]
    assert "sklearn" in answer["loaded"]
