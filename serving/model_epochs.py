"""Once per instance, before any worker: the models in force join the epoch.

Run by ``ChurnAB``'s ``on_deployment`` hook, which BentoML calls in the
``bentoml serve`` process before it starts a worker (never on ``bentoml
build``, never once per worker). It resolves each variant's tag
(``churn_v2:latest`` to ``churn_v2:k7hc3u…``), pins the resolved tags in the
environment the workers inherit, so every worker of the instance loads and
records the same model even if a retrain moves ``latest`` while it runs,
and reconciles them with the current epoch (``ab_router.model_change``).
A ledger that cannot be opened (a file that is not a database, a server that
refuses) stops the start like a bad setting: one line naming the variable.
"""

from __future__ import annotations

import logging
import os
import socket

from ab_router.errors import ConfigError, LedgerUnavailableError
from ab_router.ledger import Ledger, open_ledger
from ab_router.model_change import (
    Action,
    ModelChangeRefused,
    OnModelChange,
    reconcile_models,
)
from ab_router.records import ModelVersion
from serving.model_runtime.store import resolve_tag
from serving.settings import ENV_PREFIX, LedgerSettings, Settings, SettingsError

logger = logging.getLogger("churn_ab.models")

ON_MODEL_CHANGE = f"{ENV_PREFIX}ON_MODEL_CHANGE"


def instance_name() -> str:
    """The actor of a start-up change: this host and serve process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def resolved_tags(settings: Settings) -> dict[str, str]:
    """Each variant's tag as the model store resolves it now."""
    return {
        variant: resolve_tag(tag) for variant, tag in settings.models.tags().items()
    }


def pin_tags(tags: dict[str, str]) -> None:
    """Make the workers (which inherit this environment) serve these tags."""
    for variant, tag in tags.items():
        os.environ[f"{ENV_PREFIX}{variant.upper()}_MODEL"] = tag


def record_models_in_force(settings: Settings, *, actor: str | None = None) -> int:
    """Register, pin and reconcile this instance's models; the epoch they
    serve. A refused change raises ``SettingsError`` (one line, exit 2)."""
    tags = resolved_tags(settings)
    pin_tags(tags)
    policy = settings.experiment_settings.on_model_change
    ledger = open_ledger_at_start(settings.ledger)
    try:
        ledger.ensure_experiment(settings.experiment)
        ours = {
            variant: ModelVersion(
                ledger.register_model_version(variant, tag), variant, tag
            )
            for variant, tag in tags.items()
        }
        outcome = reconcile_models(
            ledger,
            settings.experiment.name,
            settings.experiment.known_variants,
            ours,
            policy=policy,
            actor=actor or instance_name(),
        )
    except ModelChangeRefused as refused:
        raise SettingsError(refusal_message(refused, settings)) from None
    except LedgerUnavailableError as error:
        raise SettingsError(ledger_message(settings.ledger, error)) from None
    finally:
        ledger.close()
    if outcome.decision.action is Action.NEW_EPOCH:
        logger.warning(
            "models changed (%s): experiment %s is now in epoch %d",
            outcome.decision.describe(),
            settings.experiment.name,
            outcome.epoch,
        )
    return outcome.epoch


def open_ledger_at_start(settings: LedgerSettings) -> Ledger:
    """The instance's ledger; one that cannot be opened (not a database, a
    server that refuses) is a ``SettingsError`` naming the setting."""
    try:
        return open_ledger(settings.url(), settings.ledger_path)
    except (ConfigError, LedgerUnavailableError) as error:
        raise SettingsError(ledger_message(settings, error)) from None


def ledger_message(
    settings: LedgerSettings, error: ConfigError | LedgerUnavailableError
) -> str:
    """``invalid configuration: <the ledger's variable>: <why>``, in one line
    (a driver's message may span several)."""
    variable = "LEDGER_URL" if settings.url() is not None else "LEDGER_PATH"
    why = " ".join(error.message.split())
    return f"invalid configuration: {ENV_PREFIX}{variable}: {why}"


def refusal_message(refused: ModelChangeRefused, settings: Settings) -> str:
    """One line: what differs, and the two ways on."""
    decision = refused.decision
    keep = ", ".join(
        f"{ENV_PREFIX}{variant.upper()}_MODEL={tags[0]}"
        for variant, tags in sorted(decision.before.items())
        if len(tags) == 1 and decision.after.get(variant) != tags[0]
    )
    keep_hint = f"start with the epoch's models ({keep}) or " if keep else ""
    return (
        f"{ON_MODEL_CHANGE}={OnModelChange.REFUSE.value}: experiment "
        f"{settings.experiment.name!r} {refused}; {keep_hint}set "
        f"{ON_MODEL_CHANGE}={OnModelChange.NEW_EPOCH.value} to start epoch "
        f"{refused.epoch + 1} with the new models"
    )
