"""Reading, checking and rebuilding the rollups, and retiring old epochs.

The rollups (issue #12) are kept in the same transaction as the rows; this
part of ``Ledger`` reads an epoch from them alone, proves them against a
recomputation, rebuilds them, and moves closed epochs to checked archive
files (issue #12 item 5, ``ledger.archive``).
"""

from __future__ import annotations

from pathlib import Path

from ab_router.ledger import archive, rollups
from ab_router.ledger.cursor import Cursor
from ab_router.ledger.hooks import LedgerHooks
from ab_router.ledger.rollups import EpochRollup


class RollupStore(LedgerHooks):
    """The rollup and retention part of ``Ledger``."""

    def epoch_rollup(self, experiment: str, epoch: int) -> EpochRollup:
        """An epoch's traffic and labelled sums from the rollups alone:
        O(variants × buckets) to read, however many exposures it holds."""
        return rollups.read_epoch(self._read, experiment, epoch)

    def rollup_signature(self, experiment: str, epoch: int) -> tuple[float, ...]:
        """Numbers that change whenever the epoch's rollups change (one cheap
        read): how the live view knows its snapshot is still current."""
        return rollups.signature(self._read, experiment, epoch)

    def verify_rollups(self) -> list[rollups.Mismatch]:
        """Where the rollups differ from a recomputation from every row
        (empty: they agree). Counts must match exactly, float sums within
        ``rollups.REL_TOL``; reads in one transaction, so the two agree on
        which rows exist."""

        def work(cursor: Cursor) -> list[rollups.Mismatch]:
            recomputed = rollups.recompute(cursor)
            fetch = rollups.cursor_fetch(cursor)
            archived = frozenset(
                (str(x), int(e))
                for x, e in fetch("SELECT experiment, epoch FROM archives", ())
            )
            return rollups.compare(rollups.stored(fetch), recomputed, archived)

        return self._transaction(work, "verify the rollups")

    def rebuild_rollups(self) -> None:
        """Recompute every rollup from the rows (one transaction); archived
        epochs keep theirs."""
        self._transaction(self._rebuild, "rebuild the rollups")

    def archivable_epochs(self, older_than_s: float) -> list[tuple[str, int]]:
        """Closed epochs whose newest exposure is older than ``older_than_s``."""
        return archive.archivable_epochs(self, older_than_s)

    def archive_epoch(
        self, experiment: str, epoch: int, directory: Path
    ) -> archive.ArchivedEpoch:
        """Move an epoch's rows to a checked file (``ledger.archive``)."""
        return archive.archive_epoch(self, experiment, epoch, directory)

    def restore_archive(self, path: Path) -> archive.ArchivedEpoch:
        """Put an archived epoch's rows back."""
        return archive.restore_archive(self, path)
