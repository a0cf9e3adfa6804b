"""Checks that a ledger's rollups say what its rows say (both backends)."""

from __future__ import annotations

import math

import numpy as np

from ab_router.ledger import Ledger
from ab_router.ledger.rollups import with_key_bounds
from ab_router.statistics.labelled_sums import LabelledSums, PairedSums


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_sums_close(got: LabelledSums, want: LabelledSums) -> None:
    assert (got.n, got.positives, got.confusion) == (
        want.n,
        want.positives,
        want.confusion,
    )
    assert got.scores == want.scores
    for name in ("sum_p", "sum_p2", "sum_py"):
        assert close(getattr(got, name), getattr(want, name)), name
    for moment in ("brier", "log_loss"):
        g, w = getattr(got, moment), getattr(want, moment)
        assert g.n == w.n, moment
        assert close(g.sum, w.sum) and close(g.sum_squares, w.sum_squares), moment


def assert_pairs_close(got: PairedSums, want: PairedSums) -> None:
    assert_sums_close(got.champion, want.champion)
    assert_sums_close(got.challenger, want.challenger)
    for moment in ("brier_differences", "log_loss_differences"):
        g, w = getattr(got, moment), getattr(want, moment)
        assert g.n == w.n and close(g.sum, w.sum), moment
        assert close(g.sum_squares, w.sum_squares), moment
    assert (got.only_challenger_correct, got.only_champion_correct) == (
        want.only_challenger_correct,
        want.only_champion_correct,
    )
    np.testing.assert_array_equal(got.joint_positive, want.joint_positive)
    np.testing.assert_array_equal(got.joint_negative, want.joint_negative)


def assert_rollups_match_rows(ledger: Ledger, experiment: str, epoch: int) -> None:
    """The rollup read of an epoch equals what the rows give, computed from
    the rows by the exact readers and the statistics' own constructors."""
    rollup = ledger.epoch_rollup(experiment, epoch)
    assert rollup.traffic == with_key_bounds(ledger.epoch_traffic(experiment, epoch))
    arrays = ledger.exposure_arrays(experiment, epoch)
    assert ledger.epoch_counts(experiment, epoch) == (
        arrays.label.size,
        int(arrays.labelled.sum()),
    )
    own = arrays.take(arrays.labelled & ~arrays.fallback)
    variants = sorted(set(own.variant.tolist()))
    got = rollup.labelled_split().pooled()
    assert sorted(got) == variants
    for v in variants:
        x = own.take(own.variant == v)
        assert_sums_close(
            got[v], LabelledSums.from_arrays(x.probability, x.label, x.prediction)
        )
    pairs = own.take(~np.isnan(own.shadow_probability))
    keys = sorted(
        set(zip(pairs.variant.tolist(), pairs.shadow_variant.tolist(), strict=True))
    )
    by_variants: dict[tuple[str, str], PairedSums] = {}
    for (v, _, s, _), p in rollup.paired.items():
        by_variants[(v, s)] = (
            p if (v, s) not in by_variants else by_variants[(v, s)] + p
        )
    assert sorted(by_variants) == keys
    for v, s in keys:
        x = pairs.take((pairs.variant == v) & (pairs.shadow_variant == s))
        want = PairedSums.from_arrays(
            x.probability,
            x.shadow_probability,
            x.label,
            x.prediction,
            x.shadow_prediction,
        )
        assert_pairs_close(by_variants[(v, s)], want)
