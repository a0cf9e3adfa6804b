"""churn-ab as committed, with BentoML's batching dispatcher logging its state.

For diagnostic runs only (``benchmarks.batch_interference``, issue #17):
``bentoml serve benchmarks.diagnostic_service:ChurnAB``. Every worker imports
this module, so each model service's dispatcher writes its refreshed
optimizer parameters (``o_a``, ``o_b`` and the learned ``wait``) to stderr,
timestamped, one line per refresh. Production logging is left as it is.
"""

from __future__ import annotations

import logging
import sys

DISPATCHER_LOGGER = "bentoml._internal.marshal.dispatcher"
MARKER = "optimizer params updated"


class _OptimizerUpdates(logging.Filter):
    """Only the refreshes: the per-batch "cork released" lines would flood."""

    def filter(self, record: logging.LogRecord) -> bool:
        return MARKER in record.getMessage()


def _log_dispatcher_state() -> None:
    logger = logging.getLogger(DISPATCHER_LOGGER)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # BentoML's handlers would log every batch too
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_OptimizerUpdates())
    handler.setFormatter(
        logging.Formatter("DISPATCHER %(created).3f %(process)d %(message)s")
    )
    logger.addHandler(handler)


_log_dispatcher_state()

from service import ChurnAB, ChurnV1Model, ChurnV2Model  # noqa: E402

__all__ = ["ChurnAB", "ChurnV1Model", "ChurnV2Model"]
