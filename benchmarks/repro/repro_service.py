"""Minimal reproduction: one batch burst leaves BentoML's adaptive batching waiting.

One service, one batchable API that costs 0.2 ms per call plus 20 µs per row
(like a small model), ``max_batch_size=1000``, ``max_latency_ms=1000``. The
dispatcher's logger prints its refreshed optimizer parameters (``o_a``,
``o_b`` and the learned ``wait``) to stderr. Serve it with::

    bentoml serve benchmarks.repro.repro_service:Model --port 3999

and drive it with ``python -m benchmarks.repro.drive http://127.0.0.1:3999/score``.
Nothing of churn-ab is imported; BentoML 1.4.40 and numpy are all it needs.
"""

from __future__ import annotations

import logging
import sys
import time

import bentoml
import numpy as np

_log = logging.getLogger("bentoml._internal.marshal.dispatcher")
_log.setLevel(logging.DEBUG)
_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
_log.addHandler(_handler)


@bentoml.service(workers=1)
class Model:
    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=1000, max_latency_ms=1000)
    def score(self, rows: np.ndarray) -> np.ndarray:
        # a model that costs 20 us per row plus 0.2 ms per call
        time.sleep(0.0002 + 0.00002 * len(rows))
        return rows.sum(axis=1)  # type: ignore[no-any-return]
