"""``service.py`` with measurement tweaks, selected by ``CHURN_BENCH_TWEAKS``.

Serve it as ``bentoml serve benchmarks.tuned_service:ChurnAB``. Each tweak
patches one thing before the services start, so its effect can be measured
against the untouched service in the same interleaved run without editing
``service.py``:

- ``gc``: ``gc.freeze()`` after imports and a high first-generation threshold.
- ``flat``: model services score through ``serving.model_runtime.flat_trees``.
- ``noledger``: exposures are not written (measures the per-request commit).
- ``mimecache``: BentoML's per-response ``IOMixin.mime_type`` (which rebuilds
  the output's JSON schema for ndarray/dict outputs) is cached per class.
- ``noguard``: without ``RequestGuardMiddleware`` (measures the body checks).
- ``nometrics``: the entry service keeps no Prometheus counters of its own.
- ``inproc``: the entry worker scores in-process instead of calling the model
  services (measures the entry → model hop; the model services idle).

Never for production: ``noledger`` loses the experiment's record.
"""

from __future__ import annotations

import gc
import os
from typing import Any

TWEAKS = frozenset(
    t.strip()
    for t in os.environ.get("CHURN_BENCH_TWEAKS", "").replace("+", ",").split(",")
    if t.strip()
)
KNOWN = frozenset(
    {"gc", "flat", "noledger", "inproc", "mimecache", "noguard", "nometrics"}
)
if TWEAKS - KNOWN:
    raise SystemExit(f"CHURN_BENCH_TWEAKS: unknown {sorted(TWEAKS - KNOWN)}")

import service  # noqa: E402
from serving.model_runtime import scorer as model_scorer  # noqa: E402

if "flat" in TWEAKS:
    from serving.model_runtime.flat_trees import FlatTreeEnsemble

    _original_init = model_scorer.ModelScorer.__init__

    def _flat_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _original_init(self, *args, **kwargs)
        self.estimator = FlatTreeEnsemble.from_estimator(self.estimator)

    model_scorer.ModelScorer.__init__ = _flat_init  # type: ignore[method-assign]

if "mimecache" in TWEAKS:
    import functools

    from _bentoml_sdk.io_models import IOMixin

    _mime_type = functools.cache(IOMixin.mime_type.__func__)  # type: ignore[attr-defined]
    IOMixin.mime_type = classmethod(_mime_type)  # type: ignore[method-assign,assignment,arg-type]

if "noguard" in TWEAKS:
    service.ChurnAB.middlewares[:] = [  # type: ignore[attr-defined]
        (cls, options)
        for cls, options in service.ChurnAB.middlewares  # type: ignore[attr-defined]
        if cls is not service.RequestGuardMiddleware
    ]

if "nometrics" in TWEAKS:
    service.ServiceMetrics.create = classmethod(lambda cls: None)  # type: ignore[method-assign,assignment,arg-type]

if "noledger" in TWEAKS:
    from ab_router.ledger import SqliteLedger

    SqliteLedger.record_exposures = lambda self, exposures: None  # type: ignore[method-assign]

if "inproc" in TWEAKS:
    import bentoml

    from serving.model_runtime.store import load_scorer

    class _InProcessEntry(service.EntryApp):  # type: ignore[name-defined,misc]
        def __init__(self, settings: Any, scorers: Any, *args: Any, **kw: Any) -> None:
            tags = {"v1": settings.models.v1_model, "v2": settings.models.v2_model}
            local = {v: load_scorer(bentoml.models.get(t)) for v, t in tags.items()}

            def make(variant: str) -> Any:
                async def score(codes: Any) -> Any:
                    return local[variant].score(codes)

                return score

            super().__init__(settings, {v: make(v) for v in scorers}, *args, **kw)

    service.EntryApp = _InProcessEntry  # type: ignore[attr-defined,misc]

ChurnAB = service.ChurnAB
ChurnV1Model = service.ChurnV1Model
ChurnV2Model = service.ChurnV2Model

if "gc" in TWEAKS:
    # Everything imported so far lives for the whole process: move it out of
    # the collector's view, and collect young objects less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
