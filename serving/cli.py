"""``python -m serving config [--json]``: the service's effective configuration.

Prints every setting from the environment, its value (secrets masked) and
its source, then checks the variable names as a start would. Exit codes and
messages match a refused start. It lives here, not in ``python -m
ab_router``, because the settings belong to the service and ``ab_router``
never imports ``serving``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from serving.config_check import check_variable_names
from serving.config_report import effective_configuration, render_json, render_table
from serving.settings import SettingsError, load_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving")
    sub = parser.add_subparsers(dest="command", required=True)
    cfg = sub.add_parser(
        "config", help="the service's effective configuration (secrets masked)"
    )
    cfg.add_argument("--json", action="store_true", help="print JSON, not a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        rows = effective_configuration(os.environ)
        print(render_json(rows) if args.json else render_table(rows))
        check_variable_names(os.environ, allow_unknown=settings.startup.allow_unknown)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
