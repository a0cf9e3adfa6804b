"""Choose the ledger backend from configuration.

A ``postgresql://`` URL wins over the SQLite path: several hosts then share
one experiment. psycopg is imported only when a URL is given, so the SQLite
default needs no PostgreSQL client (``pip install churn-ab[postgres]``).
"""

from __future__ import annotations

from pathlib import Path

from ab_router.errors import ConfigError
from ab_router.ledger.base import Ledger
from ab_router.ledger.sqlite import SqliteLedger

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_ledger(url: str | None, path: Path) -> Ledger:
    """The PostgreSQL ledger at ``url`` if given, else SQLite at ``path``."""
    if not url:
        return SqliteLedger(path)
    if not url.startswith(POSTGRES_SCHEMES):
        # The URL may hold a password: name the setting, not the value.
        raise ConfigError(
            "the ledger URL must start with postgresql:// or postgres://",
            field="ledger_url",
        )
    try:
        from ab_router.ledger.postgres import PostgresLedger
    except ImportError as exc:
        raise ConfigError(
            "a PostgreSQL ledger URL is set but psycopg is not installed "
            "(install the 'postgres' extra: pip install 'churn-ab[postgres]')",
            field="ledger_url",
        ) from exc
    return PostgresLedger(url)
