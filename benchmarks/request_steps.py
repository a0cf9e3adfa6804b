"""Where churn-ab's own CPU per request goes, step by step, in-process (#13).

``python -m benchmarks.request_steps`` builds the entry's real parts
(``EntryApp`` with the inline placement's scorers, the full models in
``$BENTOML_HOME``, a SQLite ledger in a temporary directory) and times, for a
``/predict`` of one customer and a ``/predict_batch`` of 10,000, each step
churn-ab does that its framework floor (``echo``) does not. BentoML's
parsing, validation and response serialisation are in the floor too and are
not timed here. Medians of repeated calls; prints Markdown.

py-spy would add the server-side view; it is not installed in this venv.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import bentoml
import numpy as np

from ab_router.assignment import Assignment, assign
from ab_router.config import CHAMPION
from ab_router.records import Exposure
from benchmarks.customers import make_customers
from benchmarks.timing import median_seconds as _time
from churn_features.customer import Customer
from churn_features.encoding import schema_codes
from serving.api_models import PredictionResponse
from serving.entry import EntryApp
from serving.metrics import ServiceMetrics
from serving.model_runtime.store import load_scorer
from serving.placement import inline_scorers
from serving.prediction_counts import count_predictions
from serving.predictor import Prediction, _answer, _Answered
from serving.request_ids import new_request_ids
from serving.settings import load_settings


class Request:
    """One request's inputs and intermediate results, built once."""

    def __init__(self, app: EntryApp, rows: int) -> None:
        self.app = app
        self.bulk = rows > 1
        self.customers = [
            Customer(**c).model_dump() for c in make_customers(rows, seed=3)
        ]
        self.state = app.state.current()
        self.codes = self.encode()
        self.assignments = self.assign()
        self.shared = _Answered(self.state, 1.0, time.time(), app.predictor.model_ids)
        self.scores = self.scorer().score(self.codes)
        self.answers = self.answer()
        self.exposures = [exposure for _, exposure in self.answers]

    def scorer(self) -> Any:
        return load_scorer(bentoml.models.get(self.app.settings.models.v1_model))

    def assign(self) -> list[Assignment]:
        weights = self.state.effective_weights
        config = self.state.config
        return [assign(c.get("customerID"), config, weights) for c in self.customers]

    def encode(self) -> np.ndarray:
        rows = [schema_codes(c) for c in self.customers]
        return np.asarray(rows, dtype=np.float64)

    def answer(self) -> list[tuple[Prediction, Exposure]]:
        ids = new_request_ids(len(self.customers))
        return [
            _answer(
                self.shared,
                request_id,
                assignment,
                (assignment.variant, assignment.variant),
                self.scores[i],
                self.customers[i].get("customerID"),
            )
            for i, (request_id, assignment) in enumerate(
                zip(ids, self.assignments, strict=True)
            )
        ]

    def fresh_exposures(self) -> list[Exposure]:
        """The same records under new ids (request ids are unique)."""
        ids = new_request_ids(len(self.exposures))
        return [
            replace(e, request_id=i) for e, i in zip(self.exposures, ids, strict=True)
        ]

    def responses(self) -> list[PredictionResponse]:
        return [PredictionResponse.model_construct(**vars(p)) for p, _ in self.answers]


def steps(
    request: Request, loop: asyncio.AbstractEventLoop, budget_s: float = 0.5
) -> Sequence[tuple[str, float]]:
    """(step, seconds per request) for one request."""
    app, scorer = request.app, request.scorer()
    router = app.predictor.models
    metrics = app.predictor.metrics or ServiceMetrics.create()
    ledger = app.ledger

    def run(make: Callable[[], Any]) -> Callable[[], object]:
        return lambda: loop.run_until_complete(make())

    def routed() -> Any:
        return router.score_with_fallback(CHAMPION, request.codes, bulk=request.bulk)

    def committed() -> Any:
        return asyncio.to_thread(ledger.record_exposures, request.fresh_exposures())

    def predicted() -> Any:
        return app.predictor.predict(
            request.customers, time.perf_counter(), bulk=request.bulk
        )

    return [
        ("assignment (sticky hash)", _time(request.assign, budget_s)),
        ("schema codes (19 floats a row)", _time(request.encode, budget_s)),
        (
            "model: encoder + trees, direct",
            _time(lambda: scorer.score(request.codes), budget_s),
        ),
        ("model: through router, thread, timeout", _time(run(routed), budget_s)),
        ("request ids, answers, ledger records", _time(request.answer, budget_s)),
        (
            "ledger commit, direct",
            _time(lambda: ledger.record_exposures(request.fresh_exposures()), budget_s),
        ),
        ("ledger commit via asyncio.to_thread", _time(run(committed), budget_s)),
        (
            "counters",
            _time(
                lambda: count_predictions(metrics, request.exposures, 0.001), budget_s
            ),
        ),
        ("response models (model_construct)", _time(request.responses, budget_s)),
        ("whole Predictor.predict", _time(run(predicted), budget_s)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument(
        "--budget-s", type=float, default=0.5, help="timing budget per step"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="churn-steps-") as tmp:
        os.environ["CHURN_AB_LEDGER_PATH"] = str(Path(tmp) / "ledger.sqlite3")
        settings = load_settings()
        tags = settings.models.tags()
        scorers = inline_scorers(
            {v: bentoml.models.get(t) for v, t in tags.items()},
            settings.models,
            settings.entry,
        )
        app = EntryApp(
            settings,
            scorers=scorers.online,
            bulk_scorers=scorers.bulk,
            model_descriptions={v: {"tag": t} for v, t in tags.items()},
            metrics=ServiceMetrics.create(),
        )
        loop = asyncio.new_event_loop()
        try:
            one = steps(Request(app, 1), loop, args.budget_s)
            many = steps(Request(app, args.batch_rows), loop, args.budget_s)
        finally:
            loop.close()
    print(f"load average {[round(x, 2) for x in os.getloadavg()]}\n")
    print(f"| step | /predict µs | /predict_batch ({args.batch_rows:,}) µs/row |")
    print("|---|---:|---:|")
    for (name, single), (_, batch) in zip(one, many, strict=True):
        print(f"| {name} | {single * 1e6:.1f} | {batch * 1e6 / args.batch_rows:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
