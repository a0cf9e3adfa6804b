"""A start with other models than the current epoch's starts a new epoch, once.

``ab_router.model_change.reconcile_models`` on a real SQLite ledger: the
same models change nothing, changed ones make one ``model_changed``
transition, the refusing policy writes nothing, and two starters racing on
the same version make one transition between them.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ab_router.admin import reset
from ab_router.ledger import Ledger, SqliteLedger
from ab_router.model_change import (
    MODEL_CHANGED,
    Action,
    ModelChangeRefused,
    ModelOutcome,
    OnModelChange,
    reconcile_models,
)
from ab_router.records import UNKNOWN_MODEL_ID, EpochModel, ModelVersion
from serving.model_epochs import refusal_message
from serving.settings import SettingsError, load_settings
from serving.startup import CONFIG_ERROR_EXIT, configuration_errors_exit
from tests.support.ledgers import CONFIG, exposure

V1, V2, V2_NEW = "churn_v1:aaa", "churn_v2:bbb", "churn_v2:ccc"
FIXTURE = Path(__file__).parents[1] / "data" / "schema1" / "sqlite.sql"


def _ours(ledger: Ledger, v1: str = V1, v2: str = V2) -> dict[str, ModelVersion]:
    return {
        variant: ModelVersion(ledger.register_model_version(variant, tag), variant, tag)
        for variant, tag in (("v1", v1), ("v2", v2))
    }


def _start(
    ledger: Ledger,
    v2: str = V2,
    *,
    policy: OnModelChange = OnModelChange.NEW_EPOCH,
    actor: str = "host-a:1",
) -> ModelOutcome:
    ledger.ensure_experiment(CONFIG)
    return reconcile_models(
        ledger,
        CONFIG.name,
        CONFIG.known_variants,
        _ours(ledger, v2=v2),
        policy=policy,
        actor=actor,
    )


def _tags(models: list[EpochModel]) -> dict[str, str]:
    return {m.variant: m.tag for m in models}


def _kinds(ledger: Ledger) -> list[str]:
    return [t.kind for t in ledger.transitions(CONFIG.name)]


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "ledger.sqlite3")


def test_a_fresh_ledger_records_epoch_1s_models(ledger: SqliteLedger) -> None:
    outcome = _start(ledger)
    assert (outcome.decision.action, outcome.epoch) == (Action.RECORD, 1)
    assert _tags(ledger.epoch_models(CONFIG.name, 1)) == {"v1": V1, "v2": V2}
    assert _kinds(ledger) == ["created"]


def test_the_same_models_change_nothing(ledger: SqliteLedger) -> None:
    _start(ledger)
    version = ledger.state_version(CONFIG.name)
    outcome = _start(ledger, actor="host-b:2")
    assert (outcome.decision.action, outcome.epoch) == (Action.KEEP, 1)
    assert ledger.state_version(CONFIG.name) == version
    assert _kinds(ledger) == ["created"]


def test_a_changed_model_starts_one_new_epoch(ledger: SqliteLedger) -> None:
    _start(ledger)
    ledger.record_exposures([exposure("v2")])
    outcome = _start(ledger, V2_NEW, actor="host-b:2")
    assert (outcome.decision.action, outcome.epoch) == (Action.NEW_EPOCH, 2)
    state = ledger.state(CONFIG.name, CONFIG.known_variants)
    assert state.epoch == 2
    change = ledger.transitions(CONFIG.name)[-1]
    assert (change.kind, change.epoch, change.actor) == (MODEL_CHANGED, 2, "host-b:2")
    assert f"v2 {V2} -> {V2_NEW}" in change.reason and "v1" not in change.reason
    assert _tags(ledger.epoch_models(CONFIG.name, 2)) == {"v1": V1, "v2": V2_NEW}
    assert _tags(ledger.epoch_models(CONFIG.name, 1)) == {"v1": V1, "v2": V2}
    # A second start with the new models (another worker, another replica).
    assert _start(ledger, V2_NEW).decision.action is Action.KEEP
    assert _kinds(ledger) == ["created", MODEL_CHANGED]


def test_refusing_writes_nothing_and_says_what_differs(ledger: SqliteLedger) -> None:
    _start(ledger)
    version = ledger.state_version(CONFIG.name)
    with pytest.raises(ModelChangeRefused) as refused:
        _start(ledger, V2_NEW, policy=OnModelChange.REFUSE)
    assert refused.value.epoch == 1
    assert f"v2 {V2} -> {V2_NEW}" in str(refused.value)
    assert ledger.state_version(CONFIG.name) == version
    assert _kinds(ledger) == ["created"]
    assert _tags(ledger.epoch_models(CONFIG.name, 1))["v2"] == V2


def test_an_admin_epoch_keeps_the_models_of_the_one_before(
    ledger: SqliteLedger,
) -> None:
    _start(ledger)
    state = ledger.state(CONFIG.name, CONFIG.known_variants)
    assert ledger.change_state(state, reset(state), reason="test", actor="admin")
    assert _tags(ledger.epoch_models(CONFIG.name, 2)) == {"v1": V1, "v2": V2}
    assert _start(ledger).decision.action is Action.KEEP


class _ReadsTogether(SqliteLedger):
    """Both starters read the epoch's models before either writes."""

    def __init__(self, path: Path, barrier: threading.Barrier) -> None:
        super().__init__(path)
        self.barrier = barrier
        self.first_read = True

    def epoch_models(self, experiment: str, epoch: int) -> list[EpochModel]:
        models = super().epoch_models(experiment, epoch)
        if self.first_read:
            self.first_read = False
            self.barrier.wait(timeout=10)
        return models


def test_two_starters_with_the_same_new_models_make_one_transition(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    _start(SqliteLedger(path))
    barrier = threading.Barrier(2)
    outcomes: list[ModelOutcome] = []

    def start(actor: str) -> None:
        outcomes.append(_start(_ReadsTogether(path, barrier), V2_NEW, actor=actor))

    threads = [threading.Thread(target=start, args=(f"host-{i}:1",)) for i in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outcomes) == 2
    ledger = SqliteLedger(path)
    assert _kinds(ledger) == ["created", MODEL_CHANGED]
    assert sorted(o.epoch for o in outcomes) == [2, 2]
    # Both decided on epoch 1's models; the loser re-read and found its own.
    assert sorted(o.decision.action for o in outcomes) == [
        Action.KEEP,
        Action.NEW_EPOCH,
    ]


def test_an_upgraded_ledger_starts_a_new_epoch_for_the_known_models(
    tmp_path: Path,
) -> None:
    path = tmp_path / "schema1.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(FIXTURE.read_text())
    connection.close()
    ledger = SqliteLedger(path)
    state = ledger.state(CONFIG.name, CONFIG.known_variants)
    old = ledger.epoch_rollup(CONFIG.name, state.epoch)
    assert set(old.traffic_by_model) == {UNKNOWN_MODEL_ID}
    outcome = reconcile_models(
        ledger,
        CONFIG.name,
        CONFIG.known_variants,
        _ours(ledger),
        policy=OnModelChange.NEW_EPOCH,
        actor="host-a:1",
    )
    assert (outcome.decision.action, outcome.epoch) == (
        Action.NEW_EPOCH,
        state.epoch + 1,
    )
    change = ledger.transitions(CONFIG.name)[-1]
    assert change.kind == MODEL_CHANGED and "unknown before upgrade" in change.reason
    assert ledger.epoch_rollup(CONFIG.name, state.epoch) == old
    assert ledger.epoch_models(CONFIG.name, state.epoch) == []
    assert _tags(ledger.epoch_models(CONFIG.name, outcome.epoch)) == {
        "v1": V1,
        "v2": V2,
    }


def test_a_refused_start_is_one_line_saying_how_to_proceed(
    ledger: SqliteLedger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("CHURN_AB_DEBUG", "CHURN_AB_EXPERIMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURN_AB_ON_MODEL_CHANGE", "refuse")
    settings = load_settings()
    assert settings.experiment_settings.on_model_change is OnModelChange.REFUSE
    _start(ledger)
    with pytest.raises(SystemExit) as caught, configuration_errors_exit():
        try:
            _start(ledger, V2_NEW, policy=settings.experiment_settings.on_model_change)
        except ModelChangeRefused as refused:
            raise SettingsError(refusal_message(refused, settings)) from None
    assert caught.value.code == CONFIG_ERROR_EXIT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("churn-ab: ")
    assert f"v2 {V2} -> {V2_NEW}" in err
    assert f"CHURN_AB_V2_MODEL={V2}" in err and "CHURN_AB_V1_MODEL" not in err
    assert "set CHURN_AB_ON_MODEL_CHANGE=new_epoch to start epoch 2" in err


def test_an_unknown_policy_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURN_AB_ON_MODEL_CHANGE", "ignore")
    with pytest.raises(SettingsError, match="CHURN_AB_ON_MODEL_CHANGE"):
        load_settings()
