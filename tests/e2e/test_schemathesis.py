"""Schemathesis against the service's own OpenAPI document: no input is a 5xx.

BentoML 1.4 serves the document at ``GET /docs.json`` (the page is ``/docs``).
The default run is small (a few examples per operation); a larger one:

    SCHEMATHESIS_MAX_EXAMPLES=500 .venv/bin/python -m pytest \
        tests/e2e/test_schemathesis.py

``SCHEMATHESIS_MAX_TIME`` (seconds) additionally keeps fuzzing until it is
spent, and ``SCHEMATHESIS_SEED`` replays a run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.bento_server import BentoServer

SCHEMATHESIS = Path(sys.executable).with_name("st")
OPERATIONS = {"/predict", "/predict_batch", "/feedback", "/feedback_batch"}


def test_openapi_document_is_served(bento_server: BentoServer) -> None:
    response = httpx.get(f"{bento_server.url}/docs.json", timeout=30)
    assert response.status_code == 200, response.text
    document = response.json()
    assert set(document["paths"]) >= OPERATIONS
    assert "Traceback" not in response.text


def test_no_generated_request_gets_a_server_error(
    bento_server: BentoServer, tmp_path: Path
) -> None:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{bento_server.url}/docs.json",
        "--url",
        bento_server.url,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"),
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261129"),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
    ]
    max_time = os.environ.get("SCHEMATHESIS_MAX_TIME")
    if max_time:
        command += ["--max-time", max_time]
    result = subprocess.run(
        command,
        cwd=tmp_path,  # any report or cache lands here, not in the checkout
        capture_output=True,
        text=True,
        timeout=900 if max_time or "SCHEMATHESIS_MAX_EXAMPLES" in os.environ else 240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    assert "Server error" not in output, output[-8000:]
