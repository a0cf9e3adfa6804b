"""``python -m ab_router``: simulate the decision rule, or report on a ledger.

    python -m ab_router simulate [--runs 400 --horizon 20000 --check-every 10
                                 --effect -0.01 --design split|shadow ...]
    python -m ab_router report --ledger PATH --experiment NAME [--epoch N]
                               --out DIR
    python -m ab_router api-key add NAME --file PATH [--rate R --burst B]
    python -m ab_router api-key remove NAME --file PATH

``simulate`` runs A/A and A/B experiments on synthetic outcomes, monitored
after every few labels, and prints the false-positive rate and power of the
anytime-valid rule next to the naive fixed-horizon test peeked at just as
often. ``report`` writes ``DIR/report.md`` and its plots for one epoch of an
experiment (the latest by default: weights are only constant within an
epoch). ``api-key add`` prints a new API key once and stores only its salted
hash in the key file a running service reloads (``CHURN_AB_API_KEYS_FILE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ab_router.api_keys import add_key, remove_key
from ab_router.config import CHALLENGER, CHAMPION
from ab_router.errors import ConfigError
from ab_router.records import Mode
from ab_router.simulate import (
    MonitoringConfig,
    MonitoringResult,
    RuleOutcome,
    SyntheticWorld,
    run_monitoring,
)
from ab_router.statistics import DecisionConfig, to_jsonable
from ab_router.statistics.design import design_of


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

    sim = sub.add_parser("simulate", help="A/A and A/B simulations under peeking")
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

    rep = sub.add_parser("report", help="Markdown + PNG report from a ledger")
    rep.add_argument(
        "--ledger",
        required=True,
        help="SQLite ledger file, or a postgresql:// URL of a shared ledger",
    )
    rep.add_argument("--experiment", required=True)
    rep.add_argument("--epoch", type=int, default=None, help="default: the latest")
    rep.add_argument("--out", type=Path, required=True, help="output directory")
    rep.add_argument("--title", default=None)
    rep.add_argument("--champion", default=CHAMPION)
    rep.add_argument("--challenger", default=CHALLENGER)
    _decision_options(rep)

    keys = sub.add_parser("api-key", help="create or remove an API key entry")
    key_sub = keys.add_subparsers(dest="key_command", required=True)
    add = key_sub.add_parser("add", help="print a new key once, store its hash")
    add.add_argument("name", help="1-32 of a-z 0-9 _ -: logs and metric label")
    add.add_argument("--file", type=Path, required=True, help="the key file")
    add.add_argument("--rate", type=float, help="requests (rows) per second")
    add.add_argument("--burst", type=float, help="bucket size (rows)")
    remove = key_sub.add_parser("remove", help="revoke a key by name")
    remove.add_argument("name")
    remove.add_argument("--file", type=Path, required=True)
    return parser


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


def _report(args: argparse.Namespace) -> int:
    # Imported here so `simulate` works without the ledger's dependencies.
    from ab_router.ledger import open_ledger
    from ab_router.report import render_report

    is_url = "://" in args.ledger
    if not is_url and not Path(args.ledger).is_file():
        print(f"error: --ledger {args.ledger}: no such file", file=sys.stderr)
        return 2
    ledger = open_ledger(args.ledger if is_url else None, Path(args.ledger))
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
    )
    print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "api-key":
            return _api_key(args)
        return _report(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad option values, named by DecisionConfig
        print(f"error: {exc}", file=sys.stderr)
        return 2
