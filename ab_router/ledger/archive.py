"""Retention without loss: closed epochs' rows moved to files, rollups kept.

``python -m ab_router archive --older-than DAYS`` writes each closed epoch
(an epoch before its experiment's current one, whose newest exposure is
older than DAYS) to ``<experiment>-epoch-<N>.jsonl.gz``:

- format: gzip of UTF-8 JSON lines, one exposure per line, an object keyed
  by the exposure columns (``ARCHIVE_COLUMNS``), request ids as strings,
  in the database's order of stored request ids;
  floats as Python's ``json`` writes them (shortest round-trip repr, so
  they read back bit for bit; an infinite latency is ``Infinity``);
- the file is read back and its row count and SHA-256 (of the uncompressed
  lines) checked; then, in one transaction, the epoch's rows are serialised
  again and must give the same count and checksum (a straggler's late
  exposure would not be in the file: nothing is deleted then), the epoch is
  recorded in ``archives``, its request ids in ``archived_requests`` and
  its rows deleted. The rollups stay: the epoch's statistics are still read
  from them, and ``rollups --verify`` skips archived epochs (no rows left to
  compare with).
- Feedback for an archived request is refused with 410 naming the epoch.
- ``--restore FILE`` puts the rows back (their rollups never left) and
  forgets the archive, so ``rollups --verify`` covers the epoch again.

On PostgreSQL the same DELETE runs; partitioning ``exposures`` by epoch would
make it a ``DROP`` of one partition, not measured here (see docs/ledger.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger.codecs import EXPOSURE_COLUMNS, request_id_of
from ab_router.ledger.cursor import Cursor

if TYPE_CHECKING:
    from ab_router.ledger.hooks import LedgerHooks

ARCHIVE_COLUMNS = (*(c.strip() for c in EXPOSURE_COLUMNS.split(",")), "observed_at")
# Ordered, so the file and the check inside the deleting transaction see the
# rows in one order and both stream them (memory: one chunk).
_SELECT = (
    f"SELECT {', '.join(ARCHIVE_COLUMNS)} FROM exposures "
    "WHERE experiment = ? AND epoch = ? ORDER BY request_id"
)
_CHUNK = 10_000


@dataclass(frozen=True)
class ArchivedEpoch:
    experiment: str
    epoch: int
    path: Path
    requests: int
    sha256: str


def _line(row: Sequence[Any]) -> bytes:
    record = dict(zip(ARCHIVE_COLUMNS, row, strict=True))
    record["request_id"] = request_id_of(record["request_id"])
    return (json.dumps(record, sort_keys=True) + "\n").encode()


def _digest(lines: Iterable[bytes]) -> tuple[int, str]:
    n, sha = 0, hashlib.sha256()
    for line in lines:
        n += 1
        sha.update(line)
    return n, sha.hexdigest()


def _cursor_rows(cursor: Cursor) -> Iterator[Sequence[Any]]:
    while rows := cursor.fetchmany(_CHUNK):
        yield from rows


def _file_lines(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        yield from f


def archivable_epochs(
    ledger: LedgerHooks, older_than_s: float, now: float | None = None
) -> list[tuple[str, int]]:
    """Closed epochs whose newest exposure is older than ``older_than_s``."""
    cutoff = (time.time() if now is None else now) - older_than_s
    rows = ledger._read(
        "SELECT e.experiment, e.epoch FROM exposures e "
        "JOIN experiments x ON x.name = e.experiment "
        "WHERE e.epoch < x.epoch GROUP BY e.experiment, e.epoch "
        "HAVING MAX(e.created_at) < ? ORDER BY e.experiment, e.epoch",
        (cutoff,),
    )
    return [(str(x), int(e)) for x, e in rows]


def archive_epoch(
    ledger: LedgerHooks, experiment: str, epoch: int, directory: Path
) -> ArchivedEpoch:
    """Write, check and delete one epoch's rows (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{experiment}-epoch-{epoch}.jsonl.gz"
    chunks = ledger._read_chunks(_SELECT, (experiment, epoch))
    with gzip.open(path, "wb") as f:

        def lines() -> Iterator[bytes]:
            for chunk in chunks:
                for row in chunk:
                    line = _line(row)
                    f.write(line)
                    yield line

        written = _digest(lines())
    if _digest(_file_lines(path)) != written:
        raise LedgerUnavailableError(
            f"the archive {path} does not read back as written"
        )
    requests, sha256 = written

    def work(cursor: Cursor) -> None:
        cursor.execute(_SELECT, (experiment, epoch))
        if _digest(_line(r) for r in _cursor_rows(cursor)) != written:
            raise LedgerUnavailableError(
                f"epoch {epoch} of {experiment!r} changed while it was archived; "
                "nothing was deleted: run the archive again"
            )
        cursor.execute(
            "INSERT INTO archives (experiment, epoch, path, requests, sha256, "
            "archived_at) VALUES (?, ?, ?, ?, ?, ?)",
            (experiment, epoch, str(path), requests, sha256, time.time()),
        )
        cursor.execute(
            "INSERT INTO archived_requests (request_id, experiment, epoch) "
            "SELECT request_id, experiment, epoch FROM exposures "
            "WHERE experiment = ? AND epoch = ?",
            (experiment, epoch),
        )
        cursor.execute(
            "DELETE FROM exposures WHERE experiment = ? AND epoch = ?",
            (experiment, epoch),
        )

    ledger._transaction(work, f"archive epoch {epoch} of {experiment!r}")
    return ArchivedEpoch(experiment, epoch, path, requests, sha256)


def restore_archive(ledger: LedgerHooks, path: Path) -> ArchivedEpoch:
    """Put an archived epoch's rows back; its rollups never left."""
    lines = list(_file_lines(path))  # one epoch, restored on purpose
    records = [json.loads(line) for line in lines]
    epochs = {(r["experiment"], int(r["epoch"])) for r in records}
    if len(epochs) != 1:
        raise ValueError(f"{path} holds {len(epochs)} epochs, not one")
    ((experiment, epoch),) = epochs
    requests, sha256 = _digest(lines)
    columns = ", ".join(ARCHIVE_COLUMNS)
    insert = (
        f"INSERT INTO exposures ({columns}) "
        f"VALUES ({', '.join('?' * len(ARCHIVE_COLUMNS))})"
    )
    rows = [
        tuple(
            ledger._store_id(r[c]) if c == "request_id" else r[c]
            for c in ARCHIVE_COLUMNS
        )
        for r in records
    ]

    def work(cursor: Cursor) -> None:
        cursor.execute(
            "SELECT requests, sha256 FROM archives WHERE experiment = ? AND epoch = ?",
            (experiment, epoch),
        )
        known = cursor.fetchone()
        if known is None or (int(known[0]), str(known[1])) != (requests, sha256):
            raise ValueError(
                f"{path} is not the recorded archive of epoch {epoch} of "
                f"{experiment!r} (count or checksum differ)"
            )
        cursor.executemany(insert, rows)
        for table in ("archived_requests", "archives"):
            cursor.execute(
                f"DELETE FROM {table} WHERE experiment = ? AND epoch = ?",
                (experiment, epoch),
            )

    ledger._transaction(work, f"restore epoch {epoch} of {experiment!r}")
    return ArchivedEpoch(experiment, epoch, path, requests, sha256)
