"""Unknown ``CHURN_AB_*`` variables: refused with the closest real setting."""

from __future__ import annotations

import difflib
import logging
import os
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.config_check import (
    ALLOW_UNKNOWN_VARIABLE,
    OTHER_TOOLS_VARIABLES,
    SUGGESTION_CUTOFF,
    check_variable_names,
    known_variables,
    setting_variables,
    suggestion,
    unknown_variables,
)
from serving.settings import ENV_PREFIX, Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]


def test_the_issue_typo_suggests_the_weights() -> None:
    assert suggestion("CHURN_AB_WIEGHTS", known_variables()) == "CHURN_AB_WEIGHTS"


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("CHURN_AB_WEIGHT", "CHURN_AB_WEIGHTS"),
        ("CHURN_AB_MDOE", "CHURN_AB_MODE"),
        ("CHURN_AB_LEDGER_PAHT", "CHURN_AB_LEDGER_PATH"),
        ("CHURN_AB_ADMIN_TOKENS", "CHURN_AB_ADMIN_TOKEN"),
        ("churn_ab_wieghts", "CHURN_AB_WEIGHTS"),
    ],
)
def test_closest_real_setting_is_suggested(typo: str, meant: str) -> None:
    assert suggestion(typo, known_variables()) == meant


def test_a_name_far_from_every_setting_gets_no_suggestion() -> None:
    assert suggestion("CHURN_AB_ZQXJ", known_variables()) is None


def test_the_cutoff_boundary_is_inclusive() -> None:
    known = [f"{ENV_PREFIX}ABCDEFGHIJ"]
    at_cutoff, below = f"{ENV_PREFIX}ABCDEFXXXX", f"{ENV_PREFIX}ABCDEXXXXX"
    # The premise: the prefix every name shares is not counted.
    ratio = difflib.SequenceMatcher(None, "ABCDEFXXXX", "ABCDEFGHIJ").ratio()
    assert ratio == SUGGESTION_CUTOFF == 0.6
    assert suggestion(at_cutoff, known) == known[0]
    assert suggestion(below, known) is None


def test_only_prefixed_unknown_names_are_reported_case_insensitively() -> None:
    environ = {
        "CHURN_AB_WEIGHTS": "v1=1,v2=0",
        "churn_ab_mode": "split",
        "CHURN_AB_WIEGHTS": "v1=0.9,v2=0.1",
        "CHURN_DATA": "x.csv",
        "PATH": "/bin",
    }
    assert unknown_variables(environ, known_variables()) == ["CHURN_AB_WIEGHTS"]


def test_unknown_variable_stops_with_the_suggestion() -> None:
    with pytest.raises(SettingsError) as caught:
        check_variable_names({"CHURN_AB_WIEGHTS": "v1=0.9"}, allow_unknown=False)
    message = str(caught.value)
    assert "unknown setting CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in (
        message
    )
    assert ALLOW_UNKNOWN_VARIABLE in message
    assert "\n" not in message


def test_several_unknown_variables_are_all_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as caught:
        check_variable_names(
            {"CHURN_AB_WIEGHTS": "1", "CHURN_AB_ZQXJ": "1"}, allow_unknown=False
        )
    message = str(caught.value)
    assert "CHURN_AB_WIEGHTS: did you mean CHURN_AB_WEIGHTS?" in message
    assert "unknown setting CHURN_AB_ZQXJ: no setting has a similar name" in message
    assert "\n" not in message


def test_escape_hatch_turns_the_refusal_into_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="serving.config_check")
    check_variable_names(
        {"CHURN_AB_WIEGHTS": "1", "CHURN_AB_ZQXJ": "1"}, allow_unknown=True
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "did you mean CHURN_AB_WEIGHTS?" in warnings[0].getMessage()
    assert "CHURN_AB_ZQXJ" in warnings[0].getMessage()


def test_known_environment_passes_silently(caplog: pytest.LogCaptureFixture) -> None:
    environ = {name: "x" for name in known_variables()}
    check_variable_names(environ, allow_unknown=False)
    assert not caplog.records


def test_every_part_of_settings_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    parts = [v for v in vars(Settings()).values() if isinstance(v, BaseSettings)]
    expected = {
        f"{ENV_PREFIX}{field}".upper()
        for part in parts
        for field in type(part).model_fields
    }
    assert expected <= set(setting_variables())
    assert {"CHURN_AB_WEIGHTS", "CHURN_AB_ALLOW_UNKNOWN", "CHURN_AB_DEBUG"} <= expected


def test_a_field_of_a_new_settings_class_is_known_without_registration() -> None:
    class _Added(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")
        brand_new_knob: int = 1

    assert "CHURN_AB_BRAND_NEW_KNOB" in known_variables()


def test_other_tools_variables_are_not_settings() -> None:
    assert not set(OTHER_TOOLS_VARIABLES) & set(setting_variables())


def test_every_variable_the_repository_mentions_is_known() -> None:
    # Deploy files, scripts, docs and code name CHURN_AB_* variables; each
    # must be a setting or a listed tool variable, or a start would refuse it.
    mentioned: dict[str, str] = {}
    roots = ["deploy", "benchmarks", "scripts", "docs", "serving", "ab_router"]
    roots += ["training", "tests/image", "tests/support"]
    files = [REPO / "README.md", REPO / "Makefile", REPO / "bentofile.yaml"]
    for root in roots:
        files += [p for p in (REPO / root).rglob("*") if p.is_file()]
    pattern = re.compile(r"CHURN_AB_[A-Z0-9][A-Z0-9_]*[A-Z0-9]")
    for path in files:
        if path.suffix in {".pyc", ".png", ".json"} or "__pycache__" in path.parts:
            continue
        for name in pattern.findall(path.read_text(errors="replace")):
            mentioned.setdefault(name, str(path.relative_to(REPO)))
    # The README shows this typo on purpose, as what the protection catches.
    mentioned.pop("CHURN_AB_WIEGHTS", None)
    unknown = {n: p for n, p in mentioned.items() if n not in known_variables()}
    assert not unknown
    assert "CHURN_AB_IMAGE" in mentioned and "CHURN_AB_WEIGHTS" in mentioned
