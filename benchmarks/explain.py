"""What explanations and drift counting cost: latency at c=1, shap's install size.

``python -m benchmarks.explain [--data CSV] [--calls N]`` trains the full
profile in-process (not saved; a few seconds), then times
``TreeExplanations.explain`` on one customer at a time, each call a different
customer of the sample, after a warm-up. For scale it also times the
pipeline's own ``predict_proba`` on one row. A second table sums the installed
files (from each distribution's RECORD) of the packages only the ``explain``
extra brings in, and times a cold ``import shap`` in a fresh interpreter. A
third times ``bin_codes`` (the drift counts a model service would add per
batch) and ``DriftCounts.__add__`` (one merge of two windows).

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ab_router.statistics.psi import bin_codes
from churn_features.encoding import records_to_codes
from churn_features.schema import FEATURE_ORDER
from serving.explanations import TreeExplanations
from training.data import load_training_data
from training.sample import find_sample_csv
from training.train import train_and_save

WARM_UP = 50
#: What ``pip install churn-ab[explain]`` adds on top of the base install:
#: shap and the requirements nothing else here has (cloudpickle is already
#: bentoml's and joblib's, numpy/scipy/pandas/scikit-learn the models').
EXTRA_ONLY = ("shap", "numba", "llvmlite", "slicer", "tqdm")


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def time_calls(call: Callable[[int], object], calls: int) -> list[float]:
    for i in range(WARM_UP):
        call(i)
    timings = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        timings.append(time.perf_counter() - started)
    return timings


def installed_bytes(name: str) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or ():
        path = Path(str(dist.locate_file(file)))
        if path.is_file():
            total += path.stat().st_size
    return total


def cold_import_seconds(module: str, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        best = min(best, time.perf_counter() - started)
    baseline = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline = min(baseline, time.perf_counter() - started)
    return best - baseline


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None, help="training CSV")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    data = args.data or find_sample_csv()
    if data is None:
        parser.error("no sample CSV found: pass --data or set CHURN_DATA")

    report = train_and_save(data, save=False)
    frame: pd.DataFrame = load_training_data(data).frame[list(FEATURE_ORDER)]
    codes = records_to_codes(frame.to_dict("records"))
    rows = len(codes)

    print(
        f"| model | call (1 customer, c=1, {args.calls} calls) | p50 ms | p99 ms "
        "| mean ms |"
    )
    print("| --- | --- | ---: | ---: | ---: |")
    for model in report.models:
        explainer = TreeExplanations(model.pipeline)
        pipeline = model.pipeline

        def explain(i: int, e: TreeExplanations = explainer) -> object:
            return e.explain(codes[i % rows : i % rows + 1])

        def predict(i: int, p: object = pipeline) -> object:
            return p.predict_proba(frame.iloc[i % rows : i % rows + 1])  # type: ignore[attr-defined]

        name = f"{model.variant.variant} ({model.variant.algorithm})"
        for label, call in (
            ("explain (encode + Tree SHAP + predict + check)", explain),
            ("pipeline predict_proba, for scale", predict),
        ):
            p50, p99, mean = percentiles(time_calls(call, args.calls))
            print(f"| {name} | {label} | {p50:.3f} | {p99:.3f} | {mean:.3f} |")

    print()
    print("| package (explain extra only) | version | installed MB |")
    print("| --- | --- | ---: |")
    total = 0
    for name in EXTRA_ONLY:
        size = installed_bytes(name)
        total += size
        version = metadata.version(name)
        print(f"| {name} | {version} | {size / 1e6:.1f} |")
    print(f"| **total** | | **{total / 1e6:.1f}** |")
    print()
    print("| drift counting (v1 reference) | p50 µs | p99 µs |")
    print("| --- | ---: | ---: |")
    reference = report.model("v1").reference
    scores = np.linspace(0.0, 1.0, rows)
    for batch in (1, 16, 256):

        def count(i: int, n: int = batch) -> object:
            start = (i * n) % (rows - n)
            return bin_codes(
                reference, codes[start : start + n], scores[start : start + n]
            )

        p50, p99, _ = percentiles(time_calls(count, args.calls))
        print(
            f"| bin_codes, {batch} rows + scores | {p50 * 1e3:.0f} | {p99 * 1e3:.0f} |"
        )
    window = bin_codes(reference, codes, scores)
    p50, p99, _ = percentiles(time_calls(lambda i: window + window, args.calls))
    print(f"| DriftCounts + DriftCounts | {p50 * 1e3:.0f} | {p99 * 1e3:.0f} |")
    print()
    print(
        f"cold `import shap`: {cold_import_seconds('shap'):.2f} s over a bare "
        "interpreter (once per model worker, at start)"
    )


if __name__ == "__main__":
    main()
