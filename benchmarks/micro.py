"""In-process costs on the request path, without HTTP: model calls and the ledger.

``python -m benchmarks.micro`` times, on the full models in ``$BENTOML_HOME``:

- ``predict_proba`` of scikit-learn vs ``serving.model_runtime.flat_trees`` per
  batch size
  (the adaptive batches a model service sees are mostly 1–16 rows);
- the entry's per-request ledger write: ``SqliteLedger.record_exposures`` of
  one exposure (one IMMEDIATE transaction + commit, WAL, synchronous=NORMAL),
  directly and through ``asyncio.to_thread`` as the predictor calls it, and
  of 16 exposures in one commit (what grouping concurrent requests would pay);
- ``/predict_batch`` rows scored in chunks (``CHURN_AB_BATCH_CHUNK_ROWS``): how
  long one chunk holds a model service's event loop, and the cost per row of
  a 10,000-row batch at that chunk size (issue #17).

Prints a Markdown table; medians of repeated timings.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import bentoml

from ab_router.ledger import SqliteLedger
from ab_router.records import Exposure, Mode, UnitKind
from benchmarks.customers import make_customers
from benchmarks.timing import median_seconds as _time
from churn_features.encoding import MODEL_STEP, FastEncoder, records_to_codes
from serving.model_runtime.flat_trees import FlatTreeEnsemble
from serving.model_runtime.store import load_scorer
from serving.settings import load_settings

BATCHES = (1, 4, 16, 64, 256, 1024, 10_000)
CHUNKS = (256, 500, 1000, 2000, 5000, 10_000)


def model_table() -> list[str]:
    customers = make_customers(max(BATCHES), seed=5)
    rows = [
        "| model | rows | scikit-learn ms | flat trees ms | speed-up "
        "| sklearn µs/row | flat µs/row |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tag in ("churn_v1:latest", "churn_v2:latest"):
        pipeline = bentoml.sklearn.load_model(tag)
        estimator = pipeline.named_steps[MODEL_STEP]
        if hasattr(estimator, "n_jobs"):
            estimator.n_jobs = 1  # as serving.model_runtime.scorer does
        encoded = FastEncoder.from_pipeline(pipeline).encode(
            records_to_codes(customers)
        )
        flat = FlatTreeEnsemble.from_estimator(estimator, max_rows=len(encoded))
        for n in BATCHES:
            x = encoded[:n]
            sk = _time(functools.partial(estimator.predict_proba, x))
            fl = _time(functools.partial(flat.predict_proba, x))
            rows.append(
                f"| {tag.split(':')[0]} | {n} | {sk * 1e3:.3f} | {fl * 1e3:.3f} "
                f"| {sk / fl:.1f}× | {sk * 1e6 / n:.1f} | {fl * 1e6 / n:.1f} |"
            )
    return rows


def chunk_table(rows: int = 10_000) -> list[str]:
    """Bulk scoring through ``ModelScorer`` (as the model services do), per
    chunk size: ms per chunk and µs per row of the whole batch."""
    codes = records_to_codes(make_customers(rows, seed=5))
    out = [
        f"| model | chunk rows | ms per chunk | µs/row of a {rows:,}-row batch |",
        "|---|---:|---:|---:|",
    ]
    for tag in ("churn_v1:latest", "churn_v2:latest"):
        scorer = load_scorer(bentoml.models.get(tag))
        for chunk in CHUNKS:
            per_chunk = _time(functools.partial(scorer.score, codes[:chunk]))
            whole = _time(functools.partial(_in_chunks, scorer, codes, chunk))
            out.append(
                f"| {tag.split(':')[0]} | {chunk:,} | {per_chunk * 1e3:.2f} "
                f"| {whole * 1e6 / rows:.2f} |"
            )
    return out


def _in_chunks(scorer: Any, codes: Any, chunk: int) -> None:
    for start in range(0, len(codes), chunk):
        scorer.score(codes[start : start + chunk])


def _exposure(experiment: str) -> Exposure:
    return Exposure(
        request_id=str(uuid.uuid4()),
        experiment=experiment,
        epoch=1,
        assigned_variant="v1",
        variant="v1",
        unit_kind=UnitKind.CUSTOMER,
        unit_id="bench-customer",
        mode=Mode.SPLIT,
        churn_probability=0.5,
        prediction=1,
        latency_ms=1.0,
        created_at=time.time(),
        fallback=False,
    )


def ledger_table() -> list[str]:
    os.environ.setdefault("CHURN_AB_LEDGER_PATH", "unused.sqlite3")
    experiment = load_settings().experiment
    with tempfile.TemporaryDirectory(prefix="churn-micro-") as tmp:
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite3")
        ledger.ensure_experiment(experiment)
        name = experiment.name
        one = _time(lambda: ledger.record_exposures([_exposure(name)]), 1.0)
        sixteen = _time(
            lambda: ledger.record_exposures([_exposure(name) for _ in range(16)]), 1.0
        )

        async def threaded() -> float:
            samples = []
            for _ in range(300):
                started = time.perf_counter()
                await asyncio.to_thread(ledger.record_exposures, [_exposure(name)])
                samples.append(time.perf_counter() - started)
            return statistics.median(samples)

        hop = asyncio.run(threaded())
    return [
        "| ledger write | ms per call | ms per exposure |",
        "|---|---:|---:|",
        f"| 1 exposure, direct | {one * 1e3:.3f} | {one * 1e3:.3f} |",
        f"| 1 exposure via asyncio.to_thread | {hop * 1e3:.3f} | {hop * 1e3:.3f} |",
        f"| 16 exposures, one commit | {sixteen * 1e3:.3f} | "
        f"{sixteen * 1e3 / 16:.3f} |",
    ]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(f"load average {[round(x, 2) for x in os.getloadavg()]}\n")
    print("\n".join(model_table()))
    print()
    print("\n".join(chunk_table()))
    print()
    print("\n".join(ledger_table()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
