"""``ModelSplit``: rollups keyed by (variant, model_id) add up per model and
are never pooled across models for the statistics (issue #18)."""

from __future__ import annotations

import numpy as np
import pytest

from ab_router.statistics.labelled_sums import LabelledSums, PairedSums
from ab_router.statistics.model_split import (
    MixedModelsError,
    ModelSplit,
    models_in_force,
)


def _sums(seed: int, n: int = 200) -> LabelledSums:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    p = np.clip(0.2 + 0.4 * y + rng.normal(0, 0.2, n), 0.0, 1.0)
    return LabelledSums.from_arrays(p, y, p >= 0.5)


def test_rows_of_one_model_add_up_and_models_stay_apart() -> None:
    a1, a2, b, c = _sums(1), _sums(2), _sums(3), _sums(4)
    split = ModelSplit.from_rows(
        [
            (("v1", "m1"), a1),
            (("v2", "m2"), b),
            (("v1", "m1"), a2),  # same model, another mode or worker: adds up
            (("v2", "m3"), c),
        ]
    )
    assert split.models("v1") == ("m1",) and split.models("v2") == ("m2", "m3")
    assert split.by_model("v1")["m1"] == a1 + a2
    assert split.by_model("v2") == {"m2": b, "m3": c}
    assert split.mixed() == {"v2": ("m2", "m3")}
    assert split.pooled() == {"v1": a1 + a2, "v2": b + c}
    assert split.models("v9") == () and split.by_model("v9") == {}


def test_statistics_refuse_to_pool_two_models() -> None:
    split = ModelSplit.from_keyed(
        {("v1", "m1"): _sums(1), ("v2", "m2"): _sums(2), ("v2", "m3"): _sums(3)}
    )
    with pytest.raises(MixedModelsError, match="'v2' has labels from 2 models") as e:
        split.for_statistics()
    assert e.value.group == "v2" and e.value.models == ("m2", "m3")
    chosen = split.for_statistics({"v2": "m3"})
    assert chosen == {"v1": _sums(1), "v2": _sums(3)}


def test_a_chosen_model_without_labels_is_left_out() -> None:
    split = ModelSplit.from_keyed({("v1", "m1"): _sums(1), ("v2", "m2"): _sums(2)})
    assert split.for_statistics({"v2": "m9"}) == {"v1": _sums(1)}
    assert split.for_statistics() == {"v1": _sums(1), "v2": _sums(2)}


def test_pairs_split_by_both_model_ids() -> None:
    rng = np.random.default_rng(5)
    y = rng.random(300) < 0.3
    p1, p2 = rng.random(300), rng.random(300)
    s = PairedSums.from_arrays(p1, p2, y, p1 >= 0.5, p2 >= 0.5)
    t = PairedSums.from_arrays(p2, p1, y, p2 >= 0.5, p1 >= 0.5)
    pair = ("v1", "v2")
    split = ModelSplit.from_keyed({(pair, ("m1", "m2")): s, (pair, ("m1", "m3")): t})
    assert split.mixed() == {pair: (("m1", "m2"), ("m1", "m3"))}
    with pytest.raises(MixedModelsError):
        split.for_statistics()
    assert split.for_statistics({pair: ("m1", "m3")}) == {pair: t}


def test_the_model_in_force_is_the_first_recorded_else_the_newest() -> None:
    seen = {"v1": {1}, "v2": {2, 3, 4}, "v3": {5, 7}, "v4": set()}
    # v2: two models recorded for the epoch (the mixed-models condition):
    # the first recorded stays in force, whatever the order of the ids.
    recorded = [("v1", 1), ("v2", 3), ("v2", 4), ("v2", 2)]
    assert models_in_force(seen, recorded) == {"v1": 1, "v2": 3, "v3": 7}
    assert models_in_force(seen, []) == {"v1": 1, "v2": 4, "v3": 7}
