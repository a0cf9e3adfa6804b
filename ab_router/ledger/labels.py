"""Joining an observed outcome to an exposure, once.

A label is a fact: the same one again is a duplicate, its opposite a
conflict, never an overwrite. ``label_work`` is the transaction body both
backends run; the backend's lock (SQLite's writer lock, PostgreSQL's
``FOR UPDATE``) makes a second labeller see the first's label. The rollups
change in the same transaction (``write_rollups``); a duplicate or a refused
conflict writes nothing, so repeating a label never counts it twice.
``LabelStore`` is the part of ``Ledger`` that runs it, by request id or by
customer.
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
from ab_router.ledger.codecs import StoredId, request_id_of
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
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


class LabelStore(LedgerHooks):
    """The feedback part of ``Ledger``: labels by request or by customer."""

    def label_request(
        self, request_id: str, churned: bool, observed_at: float | None = None
    ) -> LabelResult:
        """Join an observed outcome to one exposure, idempotently."""
        return self._label(request_id, churned, observed_at, field="request_id")

    def label_customer(
        self,
        experiment: str,
        customer_id: str,
        churned: bool,
        observed_at: float | None = None,
    ) -> LabelResult:
        """Label the customer's latest exposure in the experiment.

        A customer's outcome is one fact; it is joined to the most recent
        exposure, so each customer counts once in the statistics.
        """
        rows = self._read(
            "SELECT request_id FROM exposures WHERE experiment = ? AND unit_id = ? "
            f"ORDER BY {self._newest_first} LIMIT 1",
            (experiment, customer_id),
        )
        if not rows:
            raise UnknownRequestError(
                f"no exposure recorded for customerID {customer_id!r}",
                field="customerID",
            )
        return self._label(
            request_id_of(rows[0][0]), churned, observed_at, field="customerID"
        )

    def _label(
        self, request_id: str, churned: bool, observed_at: float | None, *, field: str
    ) -> LabelResult:
        work = label_work(
            request_id,
            churned,
            observed_at,
            field=field,
            for_update=self._for_update,
            write_rollups=self._write_rollups,
            store_id=self._store_id,
        )
        return LabelResult(request_id, self._transaction(work, "record the label"))
