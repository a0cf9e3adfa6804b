"""Start-up configuration errors: one stderr line and exit 2, unless debugging."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ab_router.errors import LedgerUnavailableError
from serving.model_epochs import ledger_message, open_ledger_at_start
from serving.settings import LedgerSettings, SettingsError
from serving.startup import (
    CONFIG_ERROR_EXIT,
    configuration_errors_exit,
    require_ledger_driver,
)


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("CHURN_AB_", "BENTOML_DEBUG", "BENTOML_VERB")):
            monkeypatch.delenv(name)


def _fail() -> None:
    with configuration_errors_exit():
        raise SettingsError("invalid configuration: CHURN_AB_MODE: no such mode")


def test_error_becomes_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        _fail()
    assert caught.value.code == CONFIG_ERROR_EXIT == 2
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert capsys.readouterr().err == (
        "churn-ab: invalid configuration: CHURN_AB_MODE: no such mode\n"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CHURN_AB_DEBUG", "1"), ("BENTOML_DEBUG", "true"), ("BENTOML_VERBOSITY", "1")],
)
def test_debug_keeps_the_exception(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match="CHURN_AB_MODE"):
        _fail()
    assert capsys.readouterr().err == ""


def test_invalid_debug_value_still_gives_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_DEBUG", "maybe")
    with pytest.raises(SystemExit):
        _fail()
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_other_errors_are_not_hidden() -> None:
    with pytest.raises(ZeroDivisionError), configuration_errors_exit():
        _ = 1 / 0


def test_postgres_url_without_the_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    ledger = LedgerSettings(ledger_url="postgresql://u:pw@h/db")
    with pytest.raises(SettingsError) as caught:
        require_ledger_driver(ledger)
    message = str(caught.value)
    assert "CHURN_AB_LEDGER_URL" in message and "postgres" in message
    assert "pw" not in message.replace("psycopg", "")


def test_sqlite_ledger_needs_no_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    require_ledger_driver(LedgerSettings())


def test_an_unusable_ledger_file_is_a_one_line_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("not a database")
    with pytest.raises(SettingsError) as caught:
        open_ledger_at_start(LedgerSettings(ledger_path=path))
    assert str(caught.value) == (
        f"invalid configuration: CHURN_AB_LEDGER_PATH: the experiment ledger "
        f"{path} could not be opened: file is not a database"
    )


def test_a_driver_message_over_several_lines_is_joined_into_one() -> None:
    ledger = LedgerSettings(ledger_url="postgresql://u:pw@h/db")
    error = LedgerUnavailableError("could not connect:\n  server refused\n")
    assert ledger_message(ledger, error) == (
        "invalid configuration: CHURN_AB_LEDGER_URL: could not connect: server refused"
    )
