"""Sticky assignment: golden vectors, proportions, stability."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ab_router.assignment import BUCKETS, assign, bucket_for, variant_for_bucket
from ab_router.config import ExperimentConfig
from ab_router.records import UnitKind

VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "assignment_vectors.json").read_text()
)


def config(weights: dict[str, float], salt: str = "churn-ab-1") -> ExperimentConfig:
    return ExperimentConfig(name="exp", salt=salt, weights=weights)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["unit_id"][:12])
def test_golden_vectors(case: dict) -> None:
    assert (
        bucket_for(case["unit_id"], case["salt"], case["hash_version"])
        == case["bucket"]
    )
    got = assign(case["unit_id"], config(case["weights"], case["salt"]))
    assert got.variant == case["variant"]
    assert got.unit_kind is UnitKind.CUSTOMER


def binomial_bound(n: int, p: float, z: float = 4.0) -> float:
    return z * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("share", [0.5, 0.9, 0.05])
def test_customer_proportions_within_binomial_bound(share: float) -> None:
    n = 10_000
    cfg = config({"v1": share, "v2": 1 - share})
    hits = sum(assign(f"cust-{i}", cfg).variant == "v1" for i in range(n))
    assert abs(hits - n * share) <= binomial_bound(n, share)


def test_request_proportions_within_binomial_bound() -> None:
    n = 10_000
    cfg = config({"v1": 0.3, "v2": 0.7})
    draws = [assign(None, cfg) for _ in range(n)]
    assert {d.unit_kind for d in draws} == {UnitKind.REQUEST}
    hits = sum(d.variant == "v1" for d in draws)
    assert abs(hits - n * 0.3) <= binomial_bound(n, 0.3)


def test_same_customer_same_variant_and_salt_reshuffles() -> None:
    cfg = config({"v1": 0.5, "v2": 0.5})
    first = [assign(f"c{i}", cfg).variant for i in range(500)]
    again = [assign(f"c{i}", cfg).variant for i in range(500)]
    assert first == again
    other = config({"v1": 0.5, "v2": 0.5}, salt="another")
    moved = sum(a != assign(f"c{i}", other).variant for i, a in enumerate(first))
    assert 150 < moved < 350  # about half move under a new salt


def test_raising_a_weight_only_moves_customers_towards_it() -> None:
    before = config({"v1": 0.9, "v2": 0.1})
    after = config({"v1": 0.75, "v2": 0.25})
    for i in range(2_000):
        was, now = assign(f"c{i}", before).variant, assign(f"c{i}", after).variant
        assert not (was == "v2" and now == "v1")


def test_zero_weight_variant_gets_nothing() -> None:
    weights = {"v1": 1.0, "v2": 0.0}
    assert {variant_for_bucket(b, weights) for b in range(BUCKETS)} == {"v1"}
