"""``python -m ab_router config``: hand over to ``python -m serving config``.

The settings belong to the service, and ``ab_router`` never imports
``serving`` (nor ``bentoml``, which ``serving`` needs). So the operator's
command replaces this process with ``python -m serving config`` run by the same
interpreter: the output, messages and exit status are that command's, and no
``serving`` module is ever loaded here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

COMMAND = "config"
SERVICE_MODULE = "serving"


def sibling_root() -> Path:
    """The directory ``ab_router`` was imported from: ``serving`` sits beside it."""
    return Path(__file__).resolve().parents[1]


def service_config_argv(args: Sequence[str]) -> list[str]:
    """The command line that prints the service's configuration."""
    return [sys.executable, "-m", SERVICE_MODULE, COMMAND, *args]


def service_config_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` with this checkout first on ``PYTHONPATH``.

    So the ``serving`` read is the one next to this ``ab_router``, whatever
    the working directory or another install on the path.
    """
    parts = [str(sibling_root())]
    if environ.get("PYTHONPATH"):
        parts.append(environ["PYTHONPATH"])
    return {**environ, "PYTHONPATH": os.pathsep.join(parts)}


def hand_over(args: Sequence[str]) -> NoReturn:
    """Replace this process with ``python -m serving config ARGS``."""
    argv = service_config_argv(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, service_config_env(os.environ))
