"""A real, throw-away PostgreSQL for tests: ``harness.postgres_server``.

It lives in ``harness`` because the benchmarks start one too
(``make bench-scale``), and ``benchmarks`` must not import ``tests``.
"""

from __future__ import annotations

from harness.postgres_server import (
    PASSWORD,
    USER,
    PostgresError,
    PostgresServer,
    postgres_bindir,
)

__all__ = ["PASSWORD", "USER", "PostgresError", "PostgresServer", "postgres_bindir"]
