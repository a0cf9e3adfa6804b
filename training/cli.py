"""``churn-train`` / ``python -m training``: train both models from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from training.errors import TrainingError
from training.evaluation import format_table
from training.settings import DataSettings
from training.train import train_and_save


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churn-train",
        description=(
            "Train the churn models v1 (random forest) and v2 (gradient "
            "boosting), print their held-out metrics and save them to the "
            "BentoML model store ($BENTOML_HOME)."
        ),
        epilog=(
            "Data precedence: --data PATH, then $CHURN_DATA, then a download of "
            "$CHURN_DATA_URL (sha256-checked) cached in $CHURN_CACHE_DIR."
        ),
    )
    parser.add_argument(
        "--data", type=Path, metavar="PATH", help="Telco churn CSV to train on"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="far fewer trees: seconds instead of tens of seconds (tests, demos)",
    )
    parser.add_argument(
        "--no-save",
        dest="save",
        action="store_false",
        help="train and evaluate only; leave the BentoML store untouched",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="seed for the split and models (42)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 data/config error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # BentoML logs its default-signature notice at INFO; ours are the progress.
    logging.getLogger("bentoml").setLevel(logging.WARNING)
    try:
        settings = DataSettings()
        report = train_and_save(
            args.data,
            quick=args.quick,
            save=args.save,
            seed=args.seed,
            settings=settings,
        )
    except ValidationError as error:
        first = error.errors()[0]
        variable = "CHURN_" + "_".join(str(p) for p in first["loc"]).upper()
        print(
            f"churn-train: error: invalid setting {variable}: {first['msg']}",
            file=sys.stderr,
        )
        return 1
    # An unusable BentoML home ($BENTOML_HOME) or cache directory surfaces as
    # an OSError naming the path: a configuration error, told in one line.
    except (TrainingError, OSError) as error:
        print(f"churn-train: error: {error}", file=sys.stderr)
        return 1

    print(format_table(report.evaluations()))
    if report.tags:
        for variant, tag in report.tags.items():
            print(f"saved {variant}: {tag}")
    else:
        print("not saved (--no-save)")
    print(f"total {report.total_seconds:.1f}s, {report.profile.value} profile")
    return 0
