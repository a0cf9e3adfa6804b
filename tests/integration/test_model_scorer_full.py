"""The serving path gives the pipeline's answers on the full-profile models,
as served (the session's ``full_report``; in integration for that training,
so ``make test-fast`` stays under a minute). The check itself, and the same
on the quick-profile models: tests/unit/test_model_scorer.py."""

from __future__ import annotations

from tests.unit.test_model_scorer import (
    BATCHES,
    VARIANTS,
    assert_serving_path_matches,
)
from training.train import TrainingReport


@VARIANTS
@BATCHES
def test_serving_path_matches_the_pipeline_on_every_row(
    full_report: TrainingReport, variant: str, batch: int
) -> None:
    assert_serving_path_matches(full_report, variant, batch)
