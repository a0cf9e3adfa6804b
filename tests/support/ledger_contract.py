"""What every ledger backend must do: one suite, run on each backend.

A test module subclasses ``LedgerContract`` and provides a ``store`` fixture
(``tests/unit/test_ledger.py``: SQLite; ``tests/integration/
test_ledger_postgres.py``: PostgreSQL). Every scenario here runs in one
process; races between processes are in ``tests/integration/
test_ledger_processes.py``.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ab_router.errors import (
    ArchivedRequestError,
    ConflictingLabelError,
    LedgerUnavailableError,
    UnknownRequestError,
)
from ab_router.ledger import LabelOutcome, Ledger
from ab_router.ledger.drift_counts import DriftKey
from ab_router.records import UNKNOWN_MODEL_ID, Exposure, Mode
from ab_router.state import ExperimentState
from ab_router.statistics import EpochTraffic, ExposureArrays
from ab_router.statistics.latency import OVERFLOW_BUCKET
from ab_router.statistics.psi import DriftCounts
from tests.support.ledgers import CONFIG, Store, admin_change, exposure
from tests.support.rollup_checks import assert_rollups_match_rows
from tests.support.rollup_properties import check_random_interleavings

# On and around bucket edges (0.1 ms below 100 ms, 1 ms to 10 s, overflow) and
# the whole-microsecond rounding, where a CAST that rounds instead of flooring
# (PostgreSQL's) or a different float expression would land elsewhere.
EDGE_LATENCIES_MS = (
    0.0, 0.0004, 0.0005, 0.0995, 0.1, 2.3, 99.9, 99.9994, 99.9995,
    99.99999999999999, 100.0, 100.0005, 1_234.5675, 9_999.9994, 9_999.9995,
    10_000.0, 86_400_000.0, 1e12, math.inf,
)  # fmt: skip


def _weights_change(
    ledger: Ledger, state: ExperimentState, weights: dict[str, float]
) -> bool:
    return admin_change(
        ledger, state, CONFIG.with_weights(weights), new_epoch=False, kind="weights"
    )


class LedgerContract:
    """The scenarios; ``store`` comes from the subclass's module."""

    #: Examples of the rollup property test (a PostgreSQL round trip costs more).
    property_examples = 60

    @pytest.fixture
    def ledger(self, store: Store) -> Ledger:
        ledger = store.open()
        ledger.ensure_experiment(CONFIG)
        return ledger

    def test_exposures_round_trip(self, ledger: Ledger) -> None:
        written = [exposure("v1"), exposure("v2", unit=None)]
        ledger.record_exposures(written)
        assert ledger.exposures("exp", 1) == written
        assert ledger.exposures("exp", 2) == []
        assert ledger.count_exposures("exp", 1) == {"v1": 1, "v2": 1}

    def test_floats_round_trip_bit_for_bit(self, ledger: Ledger) -> None:
        e = replace(
            exposure(),
            churn_probability=0.1 + 0.2,
            latency_ms=1 / 3,
            shadow_variant="v2",
            shadow_probability=2 / 7,
            shadow_prediction=0,
        )
        ledger.record_exposures([e])
        (back,) = ledger.exposures("exp", 1)
        assert back == e
        assert isinstance(back, Exposure)

    def test_empty_batches_write_nothing(self, ledger: Ledger) -> None:
        ledger.record_exposures([])
        ledger.record_shadow_scores("v2", [])
        assert ledger.epoch_counts("exp", 1) == (0, 0)

    def test_labels_are_idempotent_and_conflicts_refused(self, ledger: Ledger) -> None:
        e = exposure()
        ledger.record_exposures([e])
        assert ledger.label_request(e.request_id, True).outcome is LabelOutcome.ACCEPTED
        assert (
            ledger.label_request(e.request_id, True).outcome is LabelOutcome.DUPLICATE
        )
        with pytest.raises(ConflictingLabelError) as info:
            ledger.label_request(e.request_id, False)
        assert e.request_id in info.value.message
        assert info.value.field == "request_id"
        (stored,) = ledger.exposures("exp")
        assert stored.label == 1 and stored.labelled_at is not None
        assert ledger.epoch_counts("exp", 1) == (1, 1)
        with pytest.raises(UnknownRequestError):
            ledger.label_request("nope", True)

    def test_label_by_customer_joins_the_latest_exposure(self, ledger: Ledger) -> None:
        older, newer = exposure(unit="c9"), exposure(unit="c9")
        newer = replace(newer, created_at=older.created_at + 10)
        ledger.record_exposures([newer, older])
        result = ledger.label_customer("exp", "c9", False, observed_at=5.0)
        assert result.request_id == newer.request_id
        assert result.outcome is LabelOutcome.ACCEPTED
        with pytest.raises(ConflictingLabelError) as conflict:
            ledger.label_customer("exp", "c9", True)
        assert conflict.value.field == "customerID"
        with pytest.raises(UnknownRequestError) as info:
            ledger.label_customer("exp", "unknown", True)
        assert info.value.field == "customerID"

    def test_state_survives_reopen_and_changes_are_versioned(
        self, store: Store
    ) -> None:
        first = store.open()
        state = first.ensure_experiment(CONFIG)
        assert state.epoch == 1 and state.version == 1
        assert _weights_change(first, state, {"v1": 0.8, "v2": 0.2})
        # A second change from the stale state loses instead of clobbering.
        assert not _weights_change(first, state, {"v1": 0.5, "v2": 0.5})
        reopened = store.open().ensure_experiment(CONFIG)  # same start-up config
        assert dict(reopened.config.weights) == {"v1": 0.8, "v2": 0.2}
        assert reopened.version == 2
        assert [t.kind for t in first.transitions("exp")] == ["created", "weights"]
        assert first.current_weights("exp") == {"v1": 0.8, "v2": 0.2}

    def test_a_new_epoch_is_listed_and_counted_apart(self, ledger: Ledger) -> None:
        state = ledger.state("exp", CONFIG.known_variants)
        ledger.record_exposures([exposure()])
        assert admin_change(ledger, state, new_epoch=True, kind="reset")
        ledger.record_exposures([exposure("v2", epoch=2)])
        assert ledger.epochs("exp") == [1, 2]
        assert ledger.state("exp", CONFIG.known_variants).epoch == 2
        assert ledger.count_exposures("exp", 2) == {"v2": 1}
        assert [e.epoch for e in ledger.exposures("exp")] == [1, 2]

    def test_new_startup_config_is_applied_and_recorded(self, store: Store) -> None:
        store.open().ensure_experiment(CONFIG)
        other = CONFIG.with_weights({"v1": 0.6, "v2": 0.4})
        state = store.open().ensure_experiment(other)
        assert dict(state.config.weights) == {"v1": 0.6, "v2": 0.4}
        assert state.version == 2
        assert store.open().transitions("exp")[-1].kind == "reconfigured"

    def test_a_failed_batch_commits_nothing(self, ledger: Ledger) -> None:
        first = exposure()
        ledger.record_exposures([first])
        fresh = exposure()
        # The duplicate request id fails the batch after ``fresh`` was inserted.
        with pytest.raises(LedgerUnavailableError) as info:
            ledger.record_exposures([fresh, first])
        assert "could not commit" in info.value.message
        assert [e.request_id for e in ledger.exposures("exp")] == [first.request_id]
        # The connection is still usable after the rolled-back transaction.
        ledger.record_exposures([fresh])
        assert ledger.count_exposures("exp", 1) == {"v1": 2}

    def test_unknown_experiment_and_request_are_named(self, ledger: Ledger) -> None:
        with pytest.raises(UnknownRequestError) as info:
            ledger.state("nope", CONFIG.known_variants)
        assert info.value.field == "experiment"
        assert ledger.state_version("nope") == 0
        assert ledger.current_weights("nope") == {}
        with pytest.raises(UnknownRequestError) as request_info:
            ledger.label_request("no-such-request", True)
        assert request_info.value.field == "request_id"

    def test_column_arrays_equal_the_object_path_across_chunks(
        self, ledger: Ledger
    ) -> None:
        rows = []
        for i in range(12_345):  # more than one 10,000-row chunk
            e = exposure("v1" if i % 3 else "v2", unit=None if i % 5 == 0 else f"c{i}")
            if i % 7 == 0:
                e = replace(e, label=i % 2, labelled_at=5.0)
            if i % 11 == 0:
                e = replace(
                    e,
                    shadow_variant="v2",
                    shadow_probability=0.25,
                    shadow_prediction=0,
                    fallback=True,
                )
            rows.append(e)
        ledger.record_exposures(rows)
        got = ledger.exposure_arrays("exp", 1)
        want = ExposureArrays.from_exposures(ledger.exposures("exp", 1))
        assert got.label.size == len(rows)
        for field in want.__dataclass_fields__:
            np.testing.assert_array_equal(
                getattr(got, field), getattr(want, field), field
            )

    def test_epoch_traffic_equals_the_arrays_path(self, ledger: Ledger) -> None:
        rng = random.Random(7)
        rows = [_random_exposure(rng, i) for i in range(2_000)]
        ledger.record_exposures(rows)
        ledger.record_shadow_scores(
            "v2",
            [(e.request_id, rng.random(), 1) for e in rows if rng.random() < 0.2],
        )
        for e in rows[::20]:
            ledger.label_request(e.request_id, rng.random() < 0.3)

        for epoch in (1, 2, 3):
            arrays = ledger.exposure_arrays("exp", epoch)
            assert ledger.epoch_traffic("exp", epoch) == EpochTraffic.from_arrays(
                arrays
            )
            labelled = ledger.labelled_arrays("exp", epoch)
            want = arrays.take(arrays.labelled)
            for field in want.__dataclass_fields__:
                np.testing.assert_array_equal(
                    getattr(labelled, field), getattr(want, field), field
                )
        # The data covered what the test claims to cover.
        traffic = ledger.epoch_traffic("exp", 1)
        assert traffic.where(fallback=True).requests > 0
        assert traffic.where(shadow_variant="v2").requests > 0
        assert len(traffic.counts("mode")) == 3
        buckets = {b for c in traffic.cells for b, _ in c.latency.buckets}
        assert {0, 999, 1000, OVERFLOW_BUCKET} <= buckets
        assert ledger.epoch_traffic("exp", 3) == EpochTraffic()
        assert ledger.labelled_arrays("exp", 1).label.size == sum(
            e.epoch == 1 for e in rows[::20]
        )

    # -- model versions (issue #18) ------------------------------------------

    def test_model_versions_are_compact_idempotent_ids(self, ledger: Ledger) -> None:
        first = ledger.register_model_version("v1", "churn_v1:aaa")
        assert ledger.register_model_version("v1", "churn_v1:aaa") == first
        other = ledger.register_model_version("v2", "churn_v2:bbb")
        # The same tag under another variant is another model version.
        same_tag = ledger.register_model_version("v2", "churn_v1:aaa")
        assert len({UNKNOWN_MODEL_ID, first, other, same_tag}) == 4
        versions = ledger.model_versions()
        assert versions[first].tag == "churn_v1:aaa"
        assert versions[first].variant == "v1"
        assert versions[UNKNOWN_MODEL_ID].tag == "unknown before upgrade"
        with pytest.raises(ValueError, match="tag"):
            ledger.register_model_version("v1", "")

    def test_exposures_and_shadow_scores_record_their_model(
        self, ledger: Ledger
    ) -> None:
        m1 = ledger.register_model_version("v1", "churn_v1:aaa")
        m2 = ledger.register_model_version("v2", "churn_v2:bbb")
        e = replace(exposure("v1"), model_id=m1)
        legacy = exposure("v1")  # a caller that names no model
        ledger.record_exposures([e, legacy])
        ledger.record_shadow_scores("v2", [(e.request_id, 0.25, 0)], model_id=m2)
        ledger.record_shadow_scores("v2", [(legacy.request_id, 0.5, 1)])
        stored = {x.request_id: x for x in ledger.exposures("exp")}
        assert stored[e.request_id].model_id == m1
        assert stored[e.request_id].shadow_model_id == m2
        assert stored[legacy.request_id].model_id == UNKNOWN_MODEL_ID
        assert stored[legacy.request_id].shadow_model_id == UNKNOWN_MODEL_ID
        ledger.label_request(e.request_id, True)
        rollup = ledger.epoch_rollup("exp", 1)
        assert set(rollup.traffic_by_model) == {m1, UNKNOWN_MODEL_ID}
        assert rollup.traffic_by_model[m1].requests == 1
        assert list(rollup.labelled) == [("v1", m1)]
        assert list(rollup.paired) == [("v1", m1, "v2", m2)]

    def test_epoch_models_are_recorded_once_each(self, ledger: Ledger) -> None:
        m1 = ledger.register_model_version("v1", "churn_v1:aaa")
        m2 = ledger.register_model_version("v2", "churn_v2:bbb")
        m2b = ledger.register_model_version("v2", "churn_v2:ccc")
        ledger.record_epoch_models("exp", 1, {"v1": m1, "v2": m2}, actor="host-a")
        ledger.record_epoch_models("exp", 1, {"v1": m1, "v2": m2}, actor="host-b")
        ledger.record_epoch_models("exp", 1, {"v2": m2b}, actor="host-c")
        ledger.record_epoch_models("exp", 2, {}, actor="nobody")
        models = ledger.epoch_models("exp", 1)
        assert [(m.variant, m.model_id, m.actor) for m in models] == [
            ("v1", m1, "host-a"),
            ("v2", m2, "host-a"),
            ("v2", m2b, "host-c"),
        ]
        assert models[2].tag == "churn_v2:ccc"
        assert ledger.epoch_models("exp", 2) == []

    # -- rollups (issue #12) -------------------------------------------------

    def test_rollups_equal_what_the_rows_say(self, ledger: Ledger) -> None:
        rng = random.Random(11)
        rows = [_random_exposure(rng, i) for i in range(1_500)]
        ledger.record_exposures(rows[:1_000])
        scored = [e for e in rows[:1_000] if e.mode is Mode.SHADOW]
        ledger.record_shadow_scores(
            "v2", [(e.request_id, rng.random(), rng.randint(0, 1)) for e in scored]
        )
        for e in rows[::7]:  # some labelled before their row is even written
            if e in rows[:1_000]:
                ledger.label_request(e.request_id, rng.random() < 0.4)
        ledger.record_exposures(rows[1_000:])
        for e in rows[1_000::9]:  # and shadow scores after their labels
            ledger.label_request(e.request_id, rng.random() < 0.4)
        ledger.record_shadow_scores(
            "v2",
            [
                (e.request_id, rng.random(), 1)
                for e in rows[1_000:]
                if e.mode == "shadow"
            ],
        )
        assert ledger.verify_rollups() == []
        for epoch in (1, 2, 3):
            assert_rollups_match_rows(ledger, "exp", epoch)
        assert ledger.epoch_rollup("exp", 1).paired  # the data covered pairs

    def test_shadow_scores_before_or_after_the_label_give_one_pair(
        self, ledger: Ledger
    ) -> None:
        first, second = exposure(), exposure()
        ledger.record_exposures([first, second])
        ledger.record_shadow_scores("v2", [(first.request_id, 0.25, 0)])
        ledger.label_request(first.request_id, True)
        ledger.label_request(second.request_id, True)
        ledger.record_shadow_scores("v2", [(second.request_id, 0.25, 0)])
        (pair,) = ledger.epoch_rollup("exp", 1).paired.values()
        assert pair.n == 2 and pair.challenger.sum_p == 0.5
        # A score recorded again replaces the old one's contribution.
        ledger.record_shadow_scores("v2", [(second.request_id, 0.75, 1)])
        (pair,) = ledger.epoch_rollup("exp", 1).paired.values()
        assert pair.n == 2 and pair.challenger.sum_p == 1.0
        assert ledger.verify_rollups() == []
        assert_rollups_match_rows(ledger, "exp", 1)

    def test_repeated_and_conflicting_labels_change_no_rollup(
        self, ledger: Ledger
    ) -> None:
        e = exposure()
        ledger.record_exposures([e])
        ledger.label_request(e.request_id, True)
        before = ledger.epoch_rollup("exp", 1)
        ledger.label_request(e.request_id, True)
        with pytest.raises(ConflictingLabelError):
            ledger.label_request(e.request_id, False)
        after = ledger.epoch_rollup("exp", 1)
        assert after.labelled == before.labelled and after.traffic == before.traffic
        assert ledger.epoch_counts("exp", 1) == (1, 1)
        assert ledger.verify_rollups() == []

    def test_rollups_equal_the_rows_after_any_interleaving(
        self, ledger: Ledger
    ) -> None:
        check_random_interleavings(ledger, self.property_examples)

    # -- retention (issue #12 item 5) ----------------------------------------

    def test_archive_moves_closed_epochs_out_and_restore_brings_them_back(
        self, ledger: Ledger, tmp_path: Path
    ) -> None:
        old = [replace(exposure("v1" if i % 2 else "v2"), churn_probability=i / 40)
               for i in range(40)]  # fmt: skip
        old[3] = replace(old[3], latency_ms=math.inf)
        ledger.record_exposures(old)
        ledger.record_shadow_scores("v2", [(e.request_id, 0.25, 0) for e in old[:9]])
        for e in old[::3]:
            ledger.label_request(e.request_id, e.churn_probability > 0.5)
        state = ledger.state("exp", CONFIG.known_variants)
        assert admin_change(ledger, state, new_epoch=True, kind="reset")
        current = exposure("v1", epoch=2)
        ledger.record_exposures([current])
        before = ledger.exposures("exp", 1)
        rollup = ledger.epoch_rollup("exp", 1)
        assert ledger.archivable_epochs(older_than_s=3600) == []  # too recent
        assert ledger.archivable_epochs(older_than_s=-3600) == [("exp", 1)]

        done = ledger.archive_epoch("exp", 1, tmp_path / "archive")
        assert done.requests == 40 and done.path.is_file()
        assert ledger.exposures("exp", 1) == []
        assert ledger.archivable_epochs(older_than_s=-3600) == []
        after = ledger.epoch_rollup("exp", 1)  # the statistics stay
        assert after.traffic == rollup.traffic and after.labelled == rollup.labelled
        assert ledger.verify_rollups() == []
        with pytest.raises(ArchivedRequestError) as info:
            ledger.label_request(old[1].request_id, True)
        assert info.value.status == 410 and "epoch 1" in info.value.message
        assert ledger.label_request(current.request_id, True).outcome == "accepted"

        ledger.rebuild_rollups()  # keeps the archived epoch's rollups
        assert ledger.epoch_rollup("exp", 1).labelled == rollup.labelled
        back = ledger.restore_archive(done.path)
        assert (back.requests, back.sha256) == (done.requests, done.sha256)
        assert ledger.exposures("exp", 1) == before
        assert ledger.verify_rollups() == []
        assert_rollups_match_rows(ledger, "exp", 1)
        assert ledger.label_request(old[1].request_id, True).outcome == "accepted"
        with pytest.raises(ValueError, match="not the recorded archive"):
            ledger.restore_archive(done.path)  # restored once already

    def test_verify_names_a_rollup_that_disagrees(self, ledger: Ledger) -> None:
        ledger.record_exposures([exposure(), exposure("v2")])
        # Rows written behind the ledger's back: the rollups cannot know.
        ledger._transaction(
            lambda c: c.execute(
                "UPDATE exposures SET prediction = 0 WHERE variant = 'v2'"
            ),
            "test",
        )
        (mismatch,) = ledger.verify_rollups()
        assert mismatch.table == "traffic_cells" and mismatch.column == "predicted"
        assert "'v2'" in str(mismatch) and "'v1'" not in str(mismatch)
        assert (mismatch.stored, mismatch.recomputed) == (1, 0)
        ledger.rebuild_rollups()
        assert ledger.verify_rollups() == []
        assert ledger.epoch_rollup("exp", 1).traffic.predicted_churn == 1


def _random_exposure(rng: random.Random, i: int) -> Exposure:
    assigned = rng.choice(["v1", "v2"])
    fallback = rng.random() < 0.1
    answered = ("v2" if assigned == "v1" else "v1") if fallback else assigned
    edge = rng.random() < 0.3
    return replace(
        exposure(answered, unit=None, epoch=rng.choice([1, 1, 1, 2])),
        assigned_variant=assigned,
        fallback=fallback,
        mode=rng.choice(list(Mode)),
        prediction=rng.randint(0, 1),
        latency_ms=(
            rng.choice(EDGE_LATENCIES_MS) if edge else rng.lognormvariate(2.5, 1.5)
        ),
        created_at=1_700_000_000.0 + i,
    )


def _drift(seed: int, rows: int) -> DriftCounts:
    # Counts in a fixed layout (19 features of 1..3 bins, 4 score bins).
    rng = np.random.default_rng(seed)
    features = tuple(
        tuple(int(c) for c in rng.multinomial(rows, [1 / (1 + j % 3)] * (1 + j % 3)))
        for j in range(19)
    )
    score = tuple(int(c) for c in rng.multinomial(rows, [0.25] * 4))
    return DriftCounts(features, score, rows, rows)


def _drift_key(hour: int, epoch: int = 1, variant: str = "v1") -> DriftKey:
    return DriftKey("exp", epoch, variant, "churn_v1:abc", hour)


class DriftCountsContract:
    """Drift counts and the labelled window, on each backend."""

    def test_drift_deltas_of_two_writers_add_up_per_window(self, store: Store) -> None:
        first, second = store.open(), store.open()  # two workers
        a, b, c = _drift(1, 50), _drift(2, 70), _drift(3, 9)
        first.add_drift_counts({_drift_key(100): a})
        second.add_drift_counts({_drift_key(100): b, _drift_key(101): c})
        first.add_drift_counts(
            {_drift_key(100, epoch=2): c, _drift_key(100, variant="v2"): c}
        )
        tag = "churn_v1:abc"
        assert first.drift_counts("exp", 1) == {("v1", tag): a + b + c, ("v2", tag): c}
        assert second.drift_counts("exp", 1)[("v1", tag)].rows == 129
        assert first.drift_counts("exp", 1, since_hour=101) == {("v1", tag): c}
        assert first.drift_counts("exp", 1, since_hour=102) == {}
        assert first.drift_counts("exp", 2) == {("v1", tag): c}
        assert first.drift_counts("other", 1) == {}
        first.close()
        second.close()

    def test_drift_rows_grow_with_hours_not_with_traffic(self, store: Store) -> None:
        ledger = store.open()
        for seed in range(10):
            ledger.add_drift_counts({_drift_key(7): _drift(seed, 5)})
        (count,) = ledger._read("SELECT count(*) FROM drift_counts")[0]
        assert count == 1
        assert ledger.drift_counts("exp", 1)[("v1", "churn_v1:abc")].rows == 50
        ledger.close()

    def test_recent_labels_are_the_last_n_labelled_of_the_variant(
        self, ledger: Ledger
    ) -> None:
        exposures = [exposure("v1", unit=None) for _ in range(5)]
        exposures += [exposure("v2", unit=None), exposure("v1", unit=None, epoch=2)]
        ledger.record_exposures(exposures)
        for index, e in enumerate(exposures):
            if index != 1:  # one v1 exposure stays unlabelled
                ledger.label_request(e.request_id, churned=index % 2 == 0)
        scores, labels = ledger.recent_labels("exp", 1, "v1", limit=3)
        # Labelled last first: exposures 4, 3, 2.
        assert labels.tolist() == [1.0, 0.0, 1.0]
        assert scores.tolist() == [0.7, 0.7, 0.7]
        assert ledger.recent_labels("exp", 1, "v1", limit=100)[1].size == 4
        assert ledger.recent_labels("exp", 1, "v3", limit=100)[1].size == 0
