"""Joining an observed outcome to an exposure, once.

A label is a fact: the same one again is a duplicate, its opposite a
conflict, never an overwrite. ``label_work`` is the transaction body both
backends run; the backend's lock (SQLite's writer lock, PostgreSQL's
``FOR UPDATE``) makes a second labeller see the first's label. The rollups
change in the same transaction (``write_rollups``); a duplicate or a refused
conflict writes nothing, so repeating a label never counts it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from ab_router.errors import (
    ArchivedRequestError,
    ConflictingLabelError,
    UnknownRequestError,
)
from ab_router.ledger.codecs import StoredId
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.rollups import ROLLUP_COLUMNS, Delta, RollupRow


class LabelOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class LabelResult:
    request_id: str
    outcome: LabelOutcome


def label_work(
    request_id: str,
    churned: bool,
    observed_at: float | None,
    *,
    field: str,
    for_update: str,
    write_rollups: Callable[[Cursor, Delta], None],
    store_id: Callable[[str], StoredId],
) -> Callable[[Cursor], LabelOutcome]:
    """The transaction that labels ``request_id``; ``for_update`` is the
    backend's row-lock clause ("" where the transaction already locks),
    ``store_id`` its stored form of a request id."""
    label = 1 if churned else 0
    stored_id = store_id(request_id)

    def work(cursor: Cursor) -> LabelOutcome:
        cursor.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM exposures WHERE request_id = ?{for_update}",
            (stored_id,),
        )
        row = cursor.fetchone()
        if row is None:
            _refuse_unknown(cursor, request_id, stored_id, field)
        before = RollupRow.of(row)
        if before.label is not None:
            if before.label == label:
                return LabelOutcome.DUPLICATE
            raise ConflictingLabelError(
                f"request {request_id!r} is already labelled "
                f"churned={bool(before.label)}; refusing churned={churned}",
                field=field,
            )
        cursor.execute(
            "UPDATE exposures SET label = ?, labelled_at = ?, observed_at = ? "
            "WHERE request_id = ?",
            (label, time.time(), observed_at, stored_id),
        )
        delta = Delta()
        delta.add_rows([before], -1)
        delta.add_rows([before._replace(label=label)])
        write_rollups(cursor, delta)
        return LabelOutcome.ACCEPTED

    return work


def _refuse_unknown(
    cursor: Cursor, request_id: str, stored_id: StoredId, field: str
) -> NoReturn:
    cursor.execute(
        "SELECT experiment, epoch FROM archived_requests WHERE request_id = ?",
        (stored_id,),
    )
    archived = cursor.fetchone()
    if archived is not None:
        raise ArchivedRequestError(
            f"request {request_id!r} belongs to epoch {archived[1]} of experiment "
            f"{archived[0]!r}, which was archived: its labels can no longer change",
            field=field,
        )
    raise UnknownRequestError(
        f"no exposure recorded for request_id {request_id!r}", field=field
    )
