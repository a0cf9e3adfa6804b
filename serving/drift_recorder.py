"""Live drift counts of one entry worker, added to the shared ledger in batches.

The request path only appends each answered batch's schema codes and scores
to a buffer (about 1 µs a request); binning (``bin_codes``, once per buffer)
runs on the flushing thread, woken early when the buffer holds
``drift_buffer_rows`` rows. Only if that thread falls four buffers behind
does a request bin inline, which bounds the memory. The thread adds the
binned deltas to the ledger every ``drift_flush_s`` and ``close`` does so
once more at shutdown, so every worker's and replica's counts sum in
``drift_counts``.

What can be lost: a worker killed with SIGKILL loses the counts it gathered
since its last flush (at most ``drift_flush_s`` of its traffic). They are
derived counts, not experiment records; the exposures are committed before
any answer, as always. A flush the ledger refused is kept and retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

import numpy as np
from numpy.typing import NDArray

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import Ledger
from ab_router.ledger.drift_counts import DriftKey, hour_of
from ab_router.statistics.psi import DriftCounts, bin_codes
from churn_features.reference import ReferenceDistributions

logger = logging.getLogger("churn_ab.drift")

# (experiment, epoch, variant, hour): what one buffered batch is counted under.
_BufferKey = tuple[str, int, str, int]
JOIN_TIMEOUT_S: Final = 30.0


class DriftRecorder:
    def __init__(
        self,
        ledger: Ledger,
        references: Mapping[str, ReferenceDistributions | None],
        tags: Mapping[str, str],
        *,
        flush_s: float,
        buffer_rows: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.references = dict(references)
        self.tags = dict(tags)
        self.flush_s = flush_s
        self.buffer_rows = buffer_rows
        self._clock = clock
        self._buffers: dict[_BufferKey, list[tuple[NDArray[np.float64], ...]]] = {}
        self._buffered = 0
        self._pending: dict[DriftKey, DriftCounts] = {}
        self._lock = threading.Lock()  # buffers and pending
        self._flushing = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(
        self,
        experiment: str,
        epoch: int,
        variant: str,
        codes: NDArray[np.float64],
        scores: NDArray[np.float64],
    ) -> None:
        """Count one answered batch: ``(n, 19)`` codes and their ``n`` scores."""
        if self.references.get(variant) is None or not len(codes):
            return  # no reference, no drift (GET /ab-test/drift says so)
        key = (experiment, epoch, variant, hour_of(self._clock()))
        with self._lock:
            self._buffers.setdefault(key, []).append((codes, scores))
            self._buffered += len(codes)
            if self._buffered >= self.buffer_rows:
                self._wake.set()
            if self._buffered >= 4 * self.buffer_rows:
                self._bin_buffers()

    def _bin_buffers(self) -> None:
        """Bin every buffered batch into the pending deltas (lock held)."""
        for (experiment, epoch, variant, hour), parts in self._buffers.items():
            reference = self.references[variant]
            assert reference is not None  # observe() buffers only these
            codes = np.concatenate([p[0] for p in parts])
            scores = np.concatenate([p[1] for p in parts])
            counts = bin_codes(reference, codes, scores)
            key = DriftKey(experiment, epoch, variant, self.tags[variant], hour)
            previous = self._pending.get(key)
            self._pending[key] = counts if previous is None else previous + counts
        self._buffers.clear()
        self._buffered = 0

    def flush(self) -> None:
        """Add everything counted so far to the ledger; keep it if that fails."""
        with self._flushing:
            with self._lock:
                self._bin_buffers()
                deltas, self._pending = self._pending, {}
            if not deltas:
                return
            try:
                self.ledger.add_drift_counts(deltas)
            except LedgerUnavailableError:
                logger.warning("drift counts not recorded; retrying", exc_info=True)
                with self._lock:
                    for key, counts in deltas.items():
                        later = self._pending.get(key)
                        self._pending[key] = counts if later is None else counts + later

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="churn-ab-drift-flush", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            if self._stop.is_set():
                break  # close() flushes once more itself
            try:
                self.flush()
            except Exception:  # the thread must outlive a bad flush; logged
                logger.exception("drift flush failed")

    def close(self) -> None:
        """Stop the flushing thread and flush what is left (at shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
        self.flush()
