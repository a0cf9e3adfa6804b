"""A ledger written by the release before schema versions upgrades itself.

``tests/data/schema1/sqlite.sql`` is a dump of a ledger that release wrote
(``make_fixture.py`` says how): split and shadow traffic, fallbacks, labels,
two epochs. Opening it with this release must keep every row, number the
schema, give old rows the "unknown before upgrade" model id and build
rollups equal to what the rows say.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from ab_router.errors import LedgerUnavailableError
from ab_router.ledger import SqliteLedger, migrations, schema
from ab_router.records import UNKNOWN_MODEL_ID
from tests.support.rollup_checks import assert_rollups_match_rows

FIXTURE = Path(__file__).parents[1] / "data" / "schema1" / "sqlite.sql"


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema1.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(FIXTURE.read_text())
    connection.close()
    return path


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT * FROM exposures ORDER BY request_id"
        ).fetchall()


def test_the_fixture_is_a_schema_1_ledger(old_file: Path) -> None:
    with sqlite3.connect(old_file) as connection:
        counts = connection.execute(
            "SELECT COUNT(*), COUNT(label), COUNT(shadow_probability), "
            "SUM(fallback), COUNT(DISTINCT epoch) FROM exposures"
        ).fetchone()
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
    assert counts == (60, 18, 5, 5, 2)
    assert "schema_version" not in tables and "traffic_cells" not in tables


def test_opening_upgrades_in_place_and_keeps_every_row(old_file: Path) -> None:
    before = _rows(old_file)
    ledger = SqliteLedger(old_file)
    with sqlite3.connect(old_file) as connection:
        versions = connection.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(migrations.CURRENT_VERSION,)]
    after = _rows(old_file)
    # The same rows, the same values; two columns appended.
    assert [r[:-2] for r in after] == before
    shadowed = {r[0] for r in before if r[15] is not None}
    assert {r[-2] for r in after} == {UNKNOWN_MODEL_ID}
    assert {r[0] for r in after if r[-1] == UNKNOWN_MODEL_ID} == shadowed
    assert all(r[-1] is None for r in after if r[0] not in shadowed)
    assert ledger.model_versions()[UNKNOWN_MODEL_ID].tag == schema.UNKNOWN_MODEL_TAG
    old_exposures = ledger.exposures("exp")
    assert len(old_exposures) == 60
    assert ledger.verify_rollups() == []
    for epoch in (1, 2):
        assert_rollups_match_rows(ledger, "exp", epoch)
    assert ledger.epoch_counts("exp", 1) == (50, 17)
    assert ledger.epoch_rollup("exp", 1).paired  # the shadow pairs were built


def test_the_upgraded_ledger_keeps_working_and_upgrades_once(old_file: Path) -> None:
    ledger = SqliteLedger(old_file)
    state = ledger.state("exp", frozenset({"v1", "v2"}))
    assert state.epoch == 2
    model = ledger.register_model_version("v1", "churn_v1:new")
    assert model != UNKNOWN_MODEL_ID
    (old,) = [e for e in ledger.exposures("exp", 2) if e.request_id == "r052"]
    fresh = replace(old, request_id="after-upgrade", model_id=model)
    ledger.record_exposures([fresh])
    ledger.label_request("r052", False)
    ledger.close()
    reopened = SqliteLedger(old_file)  # a second open does not upgrade again
    with sqlite3.connect(old_file) as connection:
        assert connection.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (
            1,
        )
    assert reopened.verify_rollups() == []
    assert_rollups_match_rows(reopened, "exp", 2)
    assert set(reopened.epoch_rollup("exp", 2).traffic_by_model) == {
        UNKNOWN_MODEL_ID,
        model,
    }


def test_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    SqliteLedger(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 0.0)")
    connection.close()
    with pytest.raises(LedgerUnavailableError, match="schema version 99"):
        SqliteLedger(path)
