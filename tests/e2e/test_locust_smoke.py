"""The Locust profile runs clean against a real ``bentoml serve``.

Short, headless and bounded: a ~5 s run of ``benchmarks/locustfile.py`` must
finish with zero failures and exercise every task type, and a ~10 s soak run
must see zero errors while sampling the RSS of every server process. No
timing is asserted: throughput and latency belong to ``make bench``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from benchmarks import soak
from tests.support.bento_server import BentoServer


def _soak_args(server: BentoServer, out: Path, **overrides: Any) -> argparse.Namespace:
    args = soak.parse_args(
        ["--host", server.url, "--server-pid", str(server.pid), "--out", str(out)]
    )
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_locust_profile_runs_every_task_without_failures(
    bento_server: BentoServer, tmp_path: Path
) -> None:
    report = soak.run(
        _soak_args(
            bento_server, tmp_path, label="smoke", run_time="5s", users=6, rate=4.0
        )
    )

    assert report["locust_exit"] == 0, report["locust_stderr_tail"]
    assert report["errors"] == 0, report["failures"]
    counts = report["task_counts"]
    assert all(counts[name] > 0 for name in soak.TASK_NAMES), counts
    # The 10:2:1:1 mix: predictions dominate.
    assert counts["/predict"] > counts["/health"] > 0
    assert Path(f"{tmp_path / (report['stamp'] + '-smoke')}.html").is_file()


def test_short_soak_has_no_errors_and_samples_every_server_process(
    bento_server: BentoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = soak.run(
        _soak_args(
            bento_server,
            tmp_path,
            label="soak-smoke",
            run_time="10s",
            users=4,
            rate=3.0,
            sample_every=1.0,
        )
    )

    assert report["errors"] == 0, report["failures"]
    assert report["requests"] > 0
    samples = report["rss_samples"]
    assert len(samples) >= 5
    # Arbiter, two entry workers, one worker per model service.
    processes = samples[-1]["per_process_mb"]
    assert len(processes) >= 5, processes
    assert all(mb > 0 for mb in processes.values())
    with capsys.disabled():
        print()
        print(Path(report["summary_path"]).read_text())
