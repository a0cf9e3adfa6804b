"""``python -m serving config``: every setting, masked secrets, its source."""

from __future__ import annotations

import json
import os

import pytest

from serving.cli import main
from serving.config_check import setting_variables
from serving.config_report import (
    DEFAULT,
    ENVIRONMENT,
    MASK,
    UNSET,
    ConfigRow,
    effective_configuration,
)

TOKEN = "s3cr3t-admin-token"
PASSWORD = "hunter2-pw"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("CHURN_AB_"):
            monkeypatch.delenv(name)


def _rows() -> dict[str, ConfigRow]:
    return {r.variable: r for r in effective_configuration(os.environ)}


def test_every_setting_is_listed_once_with_its_default() -> None:
    rows = effective_configuration(os.environ)
    assert [r.variable for r in rows] == setting_variables()
    assert {r.source for r in rows} == {DEFAULT}
    by_name = {r.variable: r for r in rows}
    assert by_name["CHURN_AB_WEIGHTS"].value == '{"v1": 0.5, "v2": 0.5}'
    assert by_name["CHURN_AB_ADMIN_TOKEN"].value == UNSET


def test_environment_values_are_shown_parsed_with_their_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURN_AB_WEIGHTS", "v1=0.9,v2=0.1")
    monkeypatch.setenv("churn_ab_mode", "shadow")
    monkeypatch.setenv("CHURN_AB_CANARY_STAGES", "0.1, 1")
    rows = _rows()
    assert rows["CHURN_AB_WEIGHTS"] == ConfigRow(
        "CHURN_AB_WEIGHTS", '{"v1": 0.9, "v2": 0.1}', ENVIRONMENT
    )
    assert rows["CHURN_AB_MODE"] == ConfigRow("CHURN_AB_MODE", "shadow", ENVIRONMENT)
    assert rows["CHURN_AB_CANARY_STAGES"].value == "0.1,1.0"
    assert rows["CHURN_AB_SALT"].source == DEFAULT


def test_admin_token_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_AB_ADMIN_TOKEN", TOKEN)
    row = _rows()["CHURN_AB_ADMIN_TOKEN"]
    assert row == ConfigRow("CHURN_AB_ADMIN_TOKEN", MASK, ENVIRONMENT)


def test_ledger_url_keeps_host_but_not_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "CHURN_AB_LEDGER_URL",
        f"postgresql://churn:{PASSWORD}@db.internal:5432/ab?sslmode=require"
        f"&password={PASSWORD}",
    )
    value = _rows()["CHURN_AB_LEDGER_URL"].value
    assert PASSWORD not in value
    assert value == (
        f"postgresql://churn:{MASK}@db.internal:5432/ab?sslmode=require&password={MASK}"
    )


def test_ledger_url_without_password_is_shown_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHURN_AB_LEDGER_URL", "postgresql://churn@db:5432/ab")
    assert _rows()["CHURN_AB_LEDGER_URL"].value == "postgresql://churn@db:5432/ab"


def test_cli_prints_a_table_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("CHURN_AB_LEDGER_URL", f"postgresql://u:{PASSWORD}@h/db")
    monkeypatch.setenv("CHURN_AB_ENTRY_WORKERS", "3")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert TOKEN not in out and PASSWORD not in out
    lines = out.splitlines()
    assert lines[0].split() == ["SETTING", "VALUE", "SOURCE"]
    assert "CHURN_AB_ENTRY_WORKERS 3 environment" in [
        " ".join(x.split()) for x in lines
    ]
    assert len(lines) == 1 + len(setting_variables())


def test_cli_json_is_machine_readable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_ADMIN_TOKEN", TOKEN)
    assert main(["config", "--json"]) == 0
    config = json.loads(capsys.readouterr().out)
    assert config["CHURN_AB_ADMIN_TOKEN"] == {"value": MASK, "source": ENVIRONMENT}
    assert config["CHURN_AB_MODE"] == {"value": "split", "source": DEFAULT}


def test_cli_bad_value_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_WEIGHTS", "v1=0.8,v2=0.1")
    assert main(["config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: invalid configuration: CHURN_AB_WEIGHTS: weights must sum to 1, "
        "they sum to 0.9"
    ]


def test_cli_typo_prints_the_table_then_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_WIEGHTS", "v1=0.9,v2=0.1")
    assert main(["config"]) == 2
    captured = capsys.readouterr()
    assert "CHURN_AB_WEIGHTS" in captured.out
    [line] = captured.err.splitlines()
    assert "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in line


def test_cli_typo_allowed_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHURN_AB_WIEGHTS", "v1=0.9,v2=0.1")
    monkeypatch.setenv("CHURN_AB_ALLOW_UNKNOWN", "1")
    assert main(["config"]) == 0
    lines = [" ".join(x.split()) for x in capsys.readouterr().out.splitlines()]
    assert "CHURN_AB_ALLOW_UNKNOWN true environment" in lines
