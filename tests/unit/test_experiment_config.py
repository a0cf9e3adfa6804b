"""Experiment configuration and start-up settings refuse bad values by name."""

from __future__ import annotations

import math

import pytest

from ab_router.config import ExperimentConfig
from ab_router.errors import ConfigError
from ab_router.records import Mode
from serving.settings import SettingsError, load_settings


def make(**overrides: object) -> ExperimentConfig:
    values: dict = {"name": "exp", "salt": "s", "weights": {"v1": 0.5, "v2": 0.5}}
    values.update(overrides)
    return ExperimentConfig(**values)


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"v1": 0.6, "v2": 0.6}, "weights"),
        ({"v1": 0.5, "v3": 0.5}, "weights.v3"),
        ({"v1": -0.5, "v2": 1.5}, "weights.v1"),
        ({"v1": math.nan, "v2": 1.0}, "weights.v1"),
        ({}, "weights"),
    ],
)
def test_bad_weights_are_refused_naming_the_setting(
    weights: dict[str, float], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make(weights=weights)
    assert info.value.field == field


def test_other_bad_values() -> None:
    with pytest.raises(ConfigError, match="champion"):
        make(champion="v9")
    with pytest.raises(ConfigError, match="differ"):
        make(champion="v1", challenger="v1")
    with pytest.raises(ConfigError, match="hash_version"):
        make(hash_version=2)
    with pytest.raises(ConfigError, match="canary_stages"):
        make(canary_stages=(0.5, 0.25))


def test_round_trip() -> None:
    config = make(mode=Mode.CANARY, weights={"v1": 0.9, "v2": 0.1})
    again = ExperimentConfig.from_dict(config.to_dict(), config.known_variants)
    assert again == config


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CHURN_AB_WEIGHTS": "v1=0.7,v2=0.7"}, "CHURN_AB_WEIGHTS"),
        ({"CHURN_AB_WEIGHTS": '{"v1": 0.5, "blue": 0.5}'}, "CHURN_AB_WEIGHTS"),
        ({"CHURN_AB_MODE": "blue-green"}, "CHURN_AB_MODE"),
        ({"CHURN_AB_ENTRY_WORKERS": "0"}, "CHURN_AB_ENTRY_WORKERS"),
        ({"CHURN_AB_MODEL_TIMEOUT_S": "-1"}, "CHURN_AB_MODEL_TIMEOUT_S"),
    ],
)
def test_settings_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_settings_parse_both_weight_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_AB_WEIGHTS", "v1=0.8, v2=0.2")
    assert dict(load_settings().experiment.weights) == {"v1": 0.8, "v2": 0.2}
    monkeypatch.setenv("CHURN_AB_WEIGHTS", '{"v1": 0.1, "v2": 0.9}')
    assert dict(load_settings().experiment.weights) == {"v1": 0.1, "v2": 0.9}
