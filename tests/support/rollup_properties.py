"""Random interleavings of every write, for the rollup property test.

After any sequence of grouped exposure commits, shadow scores (first or
again, for known and unknown requests), labels (new, repeated, conflicting,
by request or by customer) and epoch changes, the rollups equal a
recomputation from the rows. Each example writes a fresh experiment into
one ledger, so examples share a backend but not their rows' keys.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ab_router.errors import ConflictingLabelError, UnknownRequestError
from ab_router.ledger import Ledger
from ab_router.records import Exposure, Mode
from tests.support.ledgers import exposure
from tests.support.rollup_checks import assert_rollups_match_rows

_EXAMPLES = itertools.count()
_REFUSED = (UnknownRequestError, ConflictingLabelError)

_LATENCY = st.one_of(
    st.sampled_from((0.0, 0.0005, 99.9995, 100.0, 9_999.9995, 1e12, math.inf)),
    st.floats(0.0, 20_000.0),
)
_PROBABILITY = st.one_of(st.sampled_from((0.0, 1.0, 0.5)), st.floats(0.0, 1.0))

_ROW = st.tuples(
    st.sampled_from(("v1", "v2")),  # assigned
    st.booleans(),  # fallback
    st.sampled_from(list(Mode)),
    st.integers(0, 2),  # model id
    _PROBABILITY,
    st.integers(0, 1),  # prediction
    _LATENCY,
    st.integers(0, 3),  # customer
)

_OPERATION = st.one_of(
    st.tuples(st.just("expose"), st.lists(_ROW, min_size=1, max_size=6)),
    st.tuples(
        st.just("shadow"),
        st.lists(st.tuples(st.integers(0, 60), _PROBABILITY), max_size=4),
        st.integers(0, 2),
    ),
    st.tuples(st.just("label"), st.integers(0, 60), st.booleans()),
    st.tuples(st.just("label_customer"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("epoch")),
)


def _apply(ledger: Ledger, experiment: str, operations: list[Any]) -> set[int]:
    written: list[Exposure] = []
    epoch, epochs = 1, {1}
    for op in operations:
        kind = op[0]
        if kind == "expose":
            batch = []
            for assigned, fallback, mode, model, p, pred, ms, unit in op[1]:
                other = "v2" if assigned == "v1" else "v1"
                batch.append(
                    replace(
                        exposure(other if fallback else assigned, unit=f"c{unit}"),
                        experiment=experiment,
                        epoch=epoch,
                        assigned_variant=assigned,
                        fallback=fallback,
                        mode=mode,
                        model_id=model,
                        churn_probability=p,
                        prediction=pred,
                        latency_ms=ms,
                        created_at=1_700_000_000.0 + len(written) + len(batch),
                    )
                )
            ledger.record_exposures(batch)
            written.extend(batch)
        elif kind == "shadow":
            scores = [(_request_id(written, i), p, int(p >= 0.5)) for i, p in op[1]]
            ledger.record_shadow_scores("v2", scores, model_id=op[2])
        elif kind == "label":
            with contextlib.suppress(*_REFUSED):  # refused: nothing may change
                ledger.label_request(_request_id(written, op[1]), op[2])
        elif kind == "label_customer":
            with contextlib.suppress(*_REFUSED):
                ledger.label_customer(experiment, f"c{op[1]}", op[2])
        else:
            epoch += 1
            epochs.add(epoch)
    return epochs


def _request_id(written: list[Exposure], index: int) -> str:
    # Past the end: a request the ledger never saw.
    return written[index].request_id if index < len(written) else f"unknown-{index}"


def check_random_interleavings(ledger: Ledger, max_examples: int) -> None:
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(st.lists(_OPERATION, min_size=1, max_size=25))
    def run(operations: list[Any]) -> None:
        experiment = f"prop-{next(_EXAMPLES)}"
        for epoch in _apply(ledger, experiment, operations):
            assert_rollups_match_rows(ledger, experiment, epoch)
        assert ledger.verify_rollups() == []

    run()
