"""``python -m ab_router``: simulate the decision rule, or report on a ledger.

    python -m ab_router simulate [--runs 400 --horizon 20000 --check-every 10
                                 --effect -0.01 --design split|shadow ...]
    python -m ab_router report --ledger PATH --experiment NAME [--epoch N]
                               --out DIR
    python -m ab_router rollups --ledger PATH (--verify | --rebuild)
    python -m ab_router archive --ledger PATH (--older-than DAYS --out DIR |
                                               --restore FILE)
    python -m ab_router api-key add NAME --file PATH [--rate R --burst B]
    python -m ab_router api-key remove NAME --file PATH
    python -m ab_router config [--json]

``simulate`` runs A/A and A/B experiments on synthetic outcomes, monitored
after every few labels, and prints the false-positive rate and power of the
anytime-valid rule next to the naive fixed-horizon test peeked at just as
often. ``report`` writes ``DIR/report.md``, ``DIR/summary.json`` (the same
exact values) and its plots for one epoch of an experiment (the latest by
default: weights are only constant within an epoch). ``config`` prints the
service's effective configuration: it hands over to ``python -m serving
config`` in a new program (``ab_router.service_config``), since ``ab_router``
never imports ``serving``. ``rollups --verify`` recomputes the rollups the live view
reads from every row and exits 1 naming the first difference;
``--rebuild`` replaces them with that recomputation. ``archive`` moves
closed epochs' rows to checked gzipped JSON-lines files (their statistics
stay in the rollups), or restores one. ``api-key add`` prints a new API key
once and stores only its salted hash in the key file a running service
reloads (``CHURN_AB_API_KEYS_FILE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ab_router.api_keys import add_key, remove_key
from ab_router.config import CHALLENGER, CHAMPION
from ab_router.errors import AbRouterError
from ab_router.records import Mode
from ab_router.service_config import COMMAND, hand_over
from ab_router.simulate import (
    MonitoringConfig,
    MonitoringResult,
    RuleOutcome,
    SyntheticWorld,
    run_monitoring,
)
from ab_router.statistics import DecisionConfig, to_jsonable
from ab_router.statistics.design import design_of

if TYPE_CHECKING:
    from ab_router.ledger import Ledger


def _decision_options(parser: argparse.ArgumentParser) -> None:
    d = DecisionConfig()
    g = parser.add_argument_group("decision")
    g.add_argument("--alpha", type=float, default=d.alpha, help="error rate")
    g.add_argument(
        "--mde", type=float, default=d.mde, help="minimum detectable Brier difference"
    )
    g.add_argument("--power", type=float, default=d.power)
    g.add_argument(
        "--min-labels", type=int, default=d.min_labels, help="per variant, warm-up"
    )
    g.add_argument(
        "--planned-labels",
        type=int,
        default=d.planned_labels,
        help="labels around which the confidence sequence is tightest",
    )
    g.add_argument("--srm-threshold", type=float, default=d.srm_threshold)


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        required=True,
        help="SQLite ledger file, or a postgresql:// URL of a shared ledger",
    )


def _decision_config(args: argparse.Namespace) -> DecisionConfig:
    return DecisionConfig(
        alpha=args.alpha,
        mde=args.mde,
        power=args.power,
        min_labels=args.min_labels,
        planned_labels=args.planned_labels,
        srm_threshold=args.srm_threshold,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ab_router", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _simulate_arguments(
        sub.add_parser("simulate", help="A/A and A/B simulations under peeking")
    )
    _report_arguments(
        sub.add_parser("report", help="Markdown + PNG report from a ledger")
    )
    _rollups_arguments(
        sub.add_parser("rollups", help="verify or rebuild a ledger's rollups")
    )
    _archive_arguments(
        sub.add_parser("archive", help="move closed epochs' rows to files")
    )
    _api_key_arguments(
        sub.add_parser("api-key", help="create or remove an API key entry")
    )
    # Listed for --help only: main() hands "config" over before parsing.
    config = sub.add_parser(
        COMMAND,
        help="the service's effective configuration (python -m serving config)",
    )
    config.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _simulate_arguments(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--runs", type=int, default=400)
    sim.add_argument("--horizon", type=int, default=20_000, help="labels per run")
    sim.add_argument("--check-every", type=int, default=10, help="labels between looks")
    sim.add_argument(
        "--effect",
        type=float,
        default=-0.01,
        help="true Brier(v2) - Brier(v1) in the A/B world (negative: v2 better)",
    )
    sim.add_argument(
        "--design",
        choices=(Mode.SPLIT.value, Mode.SHADOW.value),
        default=Mode.SPLIT.value,
        help="traffic to simulate: split (independent samples) or shadow (paired)",
    )
    sim.add_argument("--challenger-share", type=float, default=0.5)
    sim.add_argument("--seed", type=int, default=2024)
    sim.add_argument("--json", action="store_true", help="print JSON, not a table")
    _decision_options(sim)


def _report_arguments(rep: argparse.ArgumentParser) -> None:
    _ledger_option(rep)
    rep.add_argument("--experiment", required=True)
    rep.add_argument("--epoch", type=int, default=None, help="default: the latest")
    rep.add_argument("--out", type=Path, required=True, help="output directory")
    rep.add_argument("--title", default=None)
    rep.add_argument("--champion", default=CHAMPION)
    rep.add_argument("--challenger", default=CHALLENGER)
    _decision_options(rep)


def _rollups_arguments(roll: argparse.ArgumentParser) -> None:
    _ledger_option(roll)
    action = roll.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--verify",
        action="store_true",
        help="compare with a recomputation from the rows (counts exactly, "
        "float sums to a relative 1e-9); exit 1 on a difference",
    )
    action.add_argument(
        "--rebuild", action="store_true", help="recompute them from the rows"
    )


def _archive_arguments(arc: argparse.ArgumentParser) -> None:
    _ledger_option(arc)
    what = arc.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="archive closed epochs whose newest exposure is older than DAYS",
    )
    what.add_argument("--restore", type=Path, metavar="FILE", help="put one back")
    arc.add_argument("--out", type=Path, help="directory for the archive files")


def _api_key_arguments(keys: argparse.ArgumentParser) -> None:
    key_sub = keys.add_subparsers(dest="key_command", required=True)
    add = key_sub.add_parser("add", help="print a new key once, store its hash")
    add.add_argument("name", help="1-32 of a-z 0-9 _ -: logs and metric label")
    add.add_argument("--file", type=Path, required=True, help="the key file")
    add.add_argument("--rate", type=float, help="requests (rows) per second")
    add.add_argument("--burst", type=float, help="bucket size (rows)")
    remove = key_sub.add_parser("remove", help="revoke a key by name")
    remove.add_argument("name")
    remove.add_argument("--file", type=Path, required=True)


def _api_key(args: argparse.Namespace) -> int:
    if args.key_command == "add":
        key = add_key(args.file, args.name, rate=args.rate, burst=args.burst)
        print(key)
        print(
            f"stored the hash of key {args.name!r} in {args.file}; the key is "
            "shown only this once",
            file=sys.stderr,
        )
    else:
        remove_key(args.file, args.name)
        print(f"removed key {args.name!r} from {args.file}", file=sys.stderr)
    return 0


def _row(name: str, o: RuleOutcome) -> str:
    labels = "—" if o.winners == 0 else f"{o.mean_labels_to_decision:,.0f}"
    return (
        f"  {name:<38} {o.rate:6.1%}  [{o.rate_ci_low:5.1%}, {o.rate_ci_high:5.1%}]"
        f"  {labels:>10}"
    )


def _print_result(title: str, what: str, r: MonitoringResult) -> None:
    c = r.config
    print(
        f"{title}: true Brier difference {r.true_brier_difference:+.4f}, "
        f"{c.runs} runs of up to {c.horizon} labels ({c.design}), "
        f"look every {c.check_every} labels"
    )
    print(f"  {'rule':<38} {what:>6}  95% interval     mean labels")
    print(_row("anytime-valid CS, stop at first win", r.anytime))
    print(_row("naive z-test, peeked at every look", r.naive_peeking))
    print(_row("naive z-test, one look at the horizon", r.naive_single_look))
    print()


def _simulate(args: argparse.Namespace) -> int:
    decision = _decision_config(args)
    base = MonitoringConfig(
        runs=args.runs,
        horizon=args.horizon,
        check_every=args.check_every,
        design=design_of(Mode(args.design)),
        challenger_share=args.challenger_share,
        decision=decision,
        seed=args.seed,
    )
    aa = run_monitoring(base)
    ab = run_monitoring(
        replace(
            base,
            world=SyntheticWorld(brier_difference=args.effect),
            seed=args.seed + 1,
        )
    )
    if args.json:
        print(json.dumps(to_jsonable({"aa": aa, "ab": ab}), indent=2))
        return 0
    _print_result("A/A (no difference)", "FPR", aa)
    _print_result("A/B", "power", ab)
    print(
        f"The anytime-valid rule keeps the false-positive rate at or below "
        f"{decision.alpha:.0%} however often you look; the fixed-horizon test "
        f"does so only when looked at once."
    )
    return 0


def _open_ledger(location: str) -> Ledger | None:
    """The ledger at a path or URL; None (after saying why) if there is none."""
    # Imported here so `simulate` works without the ledger's dependencies.
    from ab_router.ledger import open_ledger

    is_url = "://" in location
    if not is_url and not Path(location).is_file():
        why = "a directory" if Path(location).is_dir() else "no such file"
        print(f"error: --ledger {location}: {why}", file=sys.stderr)
        return None
    return open_ledger(location if is_url else None, Path(location))


def _rollups(args: argparse.Namespace) -> int:
    ledger = _open_ledger(args.ledger)
    if ledger is None:
        return 2
    try:
        if args.rebuild:
            ledger.rebuild_rollups()
            print("rollups rebuilt from the rows")
            return 0
        mismatches = ledger.verify_rollups()
    finally:
        ledger.close()
    if not mismatches:
        print("rollups agree with the rows")
        return 0
    more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
    print(
        f"error: rollups differ from the rows: {mismatches[0]}{more}", file=sys.stderr
    )
    return 1


def _archive(args: argparse.Namespace) -> int:
    if args.older_than is not None and args.out is None:
        print("error: --older-than needs --out DIR", file=sys.stderr)
        return 2
    if args.older_than is not None and args.older_than < 0:
        print("error: --older-than must be at least 0 days", file=sys.stderr)
        return 2
    from ab_router.errors import AbRouterError

    ledger = _open_ledger(args.ledger)
    if ledger is None:
        return 2
    try:
        return _archive_or_restore(ledger, args)
    except AbRouterError as exc:  # e.g. an epoch that changed while archived
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        ledger.close()


def _archive_or_restore(ledger: Ledger, args: argparse.Namespace) -> int:
    if args.restore is not None:
        back = ledger.restore_archive(args.restore)
        print(f"restored {back.requests} exposures of epoch {back.epoch} "
              f"of {back.experiment!r}")  # fmt: skip
        return 0
    epochs = ledger.archivable_epochs(args.older_than * 86_400.0)
    for experiment, epoch in epochs:
        done = ledger.archive_epoch(experiment, epoch, args.out)
        print(f"archived {done.requests} exposures of epoch {epoch} of "
              f"{experiment!r} to {done.path} (sha256 {done.sha256})")  # fmt: skip
    if not epochs:
        print("nothing to archive")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ab_router.report import render_report

    ledger = _open_ledger(args.ledger)
    if ledger is None:
        return 2
    try:
        epoch = args.epoch
        transitions = ledger.transitions(args.experiment)
        if not transitions:
            print(
                f"error: --experiment {args.experiment!r}: not in {args.ledger}",
                file=sys.stderr,
            )
            return 2
        if epoch is None:
            epoch = max(t.epoch for t in transitions)
        in_epoch = [t for t in transitions if t.epoch == epoch]
        if not in_epoch:
            print(f"error: --epoch {epoch}: no such epoch", file=sys.stderr)
            return 2
        weights = dict(in_epoch[-1].weights)
        if len({json.dumps(t.weights, sort_keys=True) for t in in_epoch}) > 1:
            print(
                f"warning: weights changed within epoch {epoch}; the SRM check uses "
                f"the last ones {weights}",
                file=sys.stderr,
            )
        exposures = ledger.exposures(args.experiment, epoch)
        models = ledger.epoch_models(args.experiment, epoch)
        tags = {i: v.tag for i, v in ledger.model_versions().items()}
    finally:
        ledger.close()
    title = args.title or f"A/B report: {args.experiment}, epoch {epoch}"
    path = render_report(
        exposures,
        weights,
        _decision_config(args),
        args.out,
        title=title,
        champion=args.champion,
        challenger=args.challenger,
        models=models,
        model_tags=tags,
    )
    print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == [COMMAND]:
        hand_over(given[1:])
    args = build_parser().parse_args(given)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "rollups":
            return _rollups(args)
        if args.command == "archive":
            return _archive(args)
        if args.command == "api-key":
            return _api_key(args)
        return _report(args)
    # Bad option values (named by DecisionConfig), or a ledger that cannot be
    # opened (PostgreSQL URL without the extra, server unreachable).
    except (ValueError, AbRouterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
