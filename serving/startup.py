"""Start-up checks, and their errors told in one line.

``service.py`` is imported by the ``bentoml serve`` process itself before any
worker starts (and by ``bentoml build``, and by the container's entrypoint,
which runs ``bentoml serve`` too). An exception raised there reaches the
operator as BentoML's 55-line traceback; a ``SystemExit`` passes through
BentoML's CLI untouched. So a configuration error is printed as one line on
stderr and the process exits with ``CONFIG_ERROR_EXIT``; ``CHURN_AB_DEBUG=1``
or BentoML's ``--verbose`` keep the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from serving.access import AccessControl, access_control
from serving.allocator import cap_arenas
from serving.config_check import check_variable_names
from serving.model_epochs import record_models_in_force
from serving.model_runtime.store import require_models
from serving.settings import (
    ENV_PREFIX,
    LedgerSettings,
    Settings,
    SettingsError,
    StartupSettings,
    load_settings,
    require_ledger_location,
)

CONFIG_ERROR_EXIT = 2
PROGRAM = "churn-ab"


def start_up(*, first_process: bool) -> Settings:
    """Every start-up check in order, or exit with one line naming the setting.

    ``first_process`` is the ``bentoml serve`` process (or a build): it alone
    checks the variable names, so an allowed unknown variable is warned about
    once, not once per worker (the workers inherit the same environment).
    """
    with configuration_errors_exit():
        settings = load_settings()
        if first_process:
            check_variable_names(
                os.environ, allow_unknown=settings.startup.allow_unknown
            )
        cap_arenas(settings.entry.malloc_arena_max)  # before BentoML's threads
        require_models(list(settings.models.tags().values()))
        require_ledger_location(settings.ledger)
        require_ledger_driver(settings.ledger)
    return settings


def start_service(worker_index: int | None) -> tuple[Settings, AccessControl | None]:
    """``start_up``, then the API keys' access control (None: the API is open).

    ``worker_index`` is BentoML's: None in the ``bentoml serve`` process (the
    first process). A missing or malformed key file stops the start like any
    bad setting.
    """
    settings = start_up(first_process=worker_index is None)
    with configuration_errors_exit():
        access = access_control(settings.access, settings.entry.entry_workers)
    return settings, access


def record_models_at_deployment(settings: Settings) -> None:
    """Once per ``bentoml serve``, before any worker: register and pin the
    models in force (``serving/model_epochs.py``); a refused change exits
    like a bad setting."""
    with configuration_errors_exit():
        record_models_in_force(settings)


def require_ledger_driver(ledger: LedgerSettings) -> None:
    """Refuse a PostgreSQL ledger URL when psycopg (the extra) is missing.

    Without this check every entry worker would fail in its constructor and
    BentoML would restart it forever.
    """
    if ledger.url() is None:
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise SettingsError(
            f"invalid configuration: {ENV_PREFIX}LEDGER_URL: a PostgreSQL ledger "
            "needs psycopg, which is not installed (install the 'postgres' "
            "extra: pip install 'churn-ab[postgres]')"
        ) from None


@contextmanager
def configuration_errors_exit() -> Iterator[None]:
    """Turn a ``SettingsError`` into one stderr line and a non-zero exit."""
    try:
        yield
    except SettingsError as error:
        if debug_requested():
            raise
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        raise SystemExit(CONFIG_ERROR_EXIT) from None


def debug_requested() -> bool:
    """``CHURN_AB_DEBUG`` is true, or BentoML runs with ``--verbose``."""
    from bentoml._internal.configuration import get_debug_mode

    try:
        debug = StartupSettings().debug
    except ValueError:  # an invalid CHURN_AB_DEBUG is itself the error shown
        debug = False
    return debug or get_debug_mode()
