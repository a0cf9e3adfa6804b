"""Which variant answers a request.

With a customer id the choice is a salted, versioned SHA-256 hash into 10,000
buckets laid over the cumulative weights, so the same customer gets the same
variant in every worker, replica and restart (Python's ``hash()`` is salted per
process and would not be). Without an id each request draws a fresh bucket.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ab_router.config import ExperimentConfig
from ab_router.records import UnitKind

BUCKETS = 10_000

# One generator per process, seeded from the OS: only for unit-less requests,
# where no stickiness is promised.
_request_draws = random.Random()


@dataclass(frozen=True)
class Assignment:
    variant: str
    unit_kind: UnitKind
    bucket: int


def bucket_for(unit_id: str, salt: str, hash_version: int = 1) -> int:
    """The unit's bucket in ``[0, BUCKETS)`` under hash version 1."""
    if hash_version != 1:
        raise ValueError(f"unsupported hash version {hash_version}")
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant_for_bucket(bucket: int, weights: Mapping[str, float]) -> str:
    """Lay variants over the buckets in name order, each taking its share.

    Name order (not dict order) keeps the mapping identical wherever the
    weights were parsed. Zero-weight variants take no buckets.
    """
    upper = 0.0
    chosen = None
    for variant in sorted(weights):
        weight = weights[variant]
        if weight <= 0:
            continue
        chosen = variant
        upper += weight * BUCKETS
        if bucket < round(upper):
            return variant
    if chosen is None:
        raise ValueError("no variant has a positive weight")
    return chosen  # rounding left the last bucket(s): the last weighted variant


def assign(
    unit_id: str | None,
    config: ExperimentConfig,
    weights: Mapping[str, float] | None = None,
) -> Assignment:
    """Assign one request. ``weights`` override the config's (canary stages)."""
    effective = config.weights if weights is None else weights
    if unit_id is None:
        bucket = _request_draws.randrange(BUCKETS)
        kind = UnitKind.REQUEST
    else:
        bucket = bucket_for(unit_id, config.salt, config.hash_version)
        kind = UnitKind.CUSTOMER
    return Assignment(variant_for_bucket(bucket, effective), kind, bucket)
