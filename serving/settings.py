"""All configuration of the service, read once from the environment.

One settings class per concern, each field documented with its unit, default
and effect; every variable starts with ``CHURN_AB_``. ``load_settings`` is
called once when ``service.py`` is imported; a bad value stops the start with
a message naming the variable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ab_router.canary import CanaryPolicy
from ab_router.config import (
    CHALLENGER,
    CHAMPION,
    VARIANTS,
    ExperimentConfig,
    parse_mode,
)
from ab_router.errors import ConfigError
from ab_router.statistics.concept_drift import ConceptDriftConfig
from ab_router.statistics.decision import DecisionConfig

ENV_PREFIX = "CHURN_AB_"


class ModelSettings(BaseSettings):
    """Which models serve and how their services batch."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    v1_model: str = f"churn_{CHAMPION}:latest"
    """Model store tag served as variant v1 (default ``churn_v1:latest``)."""
    v2_model: str = f"churn_{CHALLENGER}:latest"
    """Model store tag served as variant v2 (default ``churn_v2:latest``)."""
    model_workers: int = Field(1, ge=1, le=16)
    """Worker processes per model service (default 1)."""
    max_batch_size: int = Field(1024, ge=1, le=100_000)
    """Largest adaptive batch a model service scores at once (rows)."""
    max_latency_ms: int = Field(1000, ge=1, le=60_000)
    """Adaptive batching latency cap (ms). BentoML's dispatcher answers 503
    "overloaded" to a request it expects to exceed this, so it must sit well
    above the model's worst batch time under load (a tight cap turned a busy
    machine's normal slowness into fallbacks)."""

    def tags(self) -> dict[str, str]:
        """Model store tag of each variant, champion first."""
        return {CHAMPION: self.v1_model, CHALLENGER: self.v2_model}


class EntrySettings(BaseSettings):
    """The public entry service."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    entry_workers: int = Field(2, ge=1, le=64)
    """Worker processes of the entry service (default 2)."""
    request_timeout_s: float = Field(30.0, gt=0, le=600)
    """BentoML's per-request timeout (seconds)."""
    model_timeout_s: float = Field(2.0, gt=0, le=60)
    """Budget for one model-service call (seconds); past it the other variant
    answers as a fallback."""
    max_batch_customers: int = Field(10_000, ge=1, le=100_000)
    """Most customers one ``/predict_batch`` request may carry."""
    access_log: bool = False
    """Write BentoML's per-request access log lines (default off: measured at
    about a quarter of the server CPU per request together with tracing)."""
    trace_hot_routes: bool = False
    """Create OpenTelemetry spans for /predict, /predict_batch and the model
    services' /score (default off; spans cost CPU even when nothing exports)."""
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    """Largest request body accepted (bytes; 413 past it). A compact batch of
    10,000 customers is about 6.5 MB."""
    breaker_failures: int = Field(5, ge=1, le=1000)
    """Consecutive failures that open a variant's circuit breaker."""
    breaker_cooldown_s: float = Field(5.0, gt=0, le=3600)
    """Seconds an open breaker waits before letting one trial call through."""
    state_refresh_s: float = Field(1.0, gt=0, le=60)
    """How often a worker re-reads the experiment state (seconds)."""
    malloc_arena_max: int = Field(2, ge=0, le=64)
    """glibc malloc arenas a worker's threads share (0 = glibc's default of 8
    per core). Few arenas keep freed memory from piling up per thread; a soak
    measured the difference (docs/performance.md)."""
    model_calls_in_flight: int = Field(1, ge=1, le=1024)
    """Calls one entry worker keeps open to each model service at a time.
    Requests arriving meanwhile share the next call (``serving/coalescing.py``);
    a high value turns the sharing off."""


def observability_config(entry: EntrySettings) -> dict[str, object]:
    """BentoML service options for access logging and tracing."""
    config: dict[str, object] = {"logging": {"access": {"enabled": entry.access_log}}}
    if not entry.trace_hot_routes:
        config["tracing"] = {"excluded_urls": "predict,predict_batch,score"}
    return config


class ExperimentSettings(BaseSettings):
    """The experiment the service starts with (runtime changes persist)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    experiment: str = f"churn-{CHAMPION}-vs-{CHALLENGER}"
    """Experiment name; also the ledger key."""
    salt: str = "churn-ab-1"
    """Salt of the sticky hash. Changing it reshuffles every customer."""
    weights: Annotated[dict[str, float], NoDecode] = {CHAMPION: 0.5, CHALLENGER: 0.5}
    """Traffic weights, JSON (``{"v1":0.9,"v2":0.1}``) or ``v1=0.9,v2=0.1``."""
    mode: str = "split"
    """``split``, ``shadow`` or ``canary``."""
    champion: str = CHAMPION
    """Variant that answers in shadow mode and keeps the rest of a canary."""
    challenger: str = CHALLENGER
    """Variant under test."""
    canary_stages: Annotated[tuple[float, ...], NoDecode] = (0.05, 0.25, 0.5, 1.0)
    """Challenger shares of the canary stages, comma-separated."""
    canary_min_requests: int = Field(200, ge=1)
    """Challenger exposures a canary stage must see before it may advance."""
    canary_max_error_rate: float = Field(0.02, ge=0, le=1)
    """Challenger failure share above which the canary rolls back."""
    canary_max_p95_ms: float = Field(250.0, gt=0)
    """Challenger p95 latency (ms) above which the canary rolls back."""
    canary_brier_margin: float = Field(0.02, ge=0)
    """Allowed Brier-score excess of the challenger once labels exist."""

    decision_mde: float = Field(0.01, gt=0, lt=1)
    """Smallest Brier-score difference worth detecting (decision rule)."""
    decision_planned_labels: int = Field(10_000, ge=1)
    """Labels the anytime-valid interval is tuned for; fix before starting."""
    decision_min_labels: int = Field(100, ge=1)
    """Labels per variant before any verdict other than 'keep collecting'."""

    @field_validator("weights", mode="before")
    @classmethod
    def _parse_weights(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        pairs = (item.split("=", 1) for item in text.split(",") if item.strip())
        return {name.strip(): float(share) for name, share in pairs}

    @field_validator("canary_stages", mode="before")
    @classmethod
    def _parse_stages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(float(s) for s in value.split(",") if s.strip())
        return value

    def canary_policy(self) -> CanaryPolicy:
        return CanaryPolicy(
            min_requests=self.canary_min_requests,
            max_error_rate=self.canary_max_error_rate,
            max_p95_ms=self.canary_max_p95_ms,
            brier_margin=self.canary_brier_margin,
        )

    def decision_config(self) -> DecisionConfig:
        return DecisionConfig(
            mde=self.decision_mde,
            planned_labels=self.decision_planned_labels,
            min_labels=self.decision_min_labels,
        )

    def to_config(self) -> ExperimentConfig:
        return ExperimentConfig(
            name=self.experiment,
            salt=self.salt,
            weights=dict(self.weights),
            mode=parse_mode(self.mode),
            champion=self.champion,
            challenger=self.challenger,
            canary_stages=tuple(self.canary_stages),
            known_variants=frozenset(VARIANTS),
        )


class LedgerSettings(BaseSettings):
    """Where the experiment ledger lives."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    ledger_path: Path = Path("var/churn-ab-ledger.sqlite3")
    """SQLite ledger file shared by all workers (relative to the working dir)."""
    ledger_url: SecretStr | None = None
    """PostgreSQL ledger, a libpq ``postgresql://user:password@host:5432/db``
    URL (default unset). When set it wins over ``ledger_path``: every replica
    on every host shares one experiment. Needs the ``postgres`` extra."""

    @field_validator("ledger_url", mode="before")
    @classmethod
    def _check_url_scheme(cls, value: object) -> object:
        # An empty variable (compose passing an unset one through) means unset.
        if isinstance(value, str) and not value.strip():
            return None
        # Names the rule, never the value: the URL may carry a password.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and text.split("://", 1)[0] not in (
            "postgresql",
            "postgres",
        ):
            raise ValueError("must be a postgresql:// URL")
        return value

    def url(self) -> str | None:
        """The PostgreSQL URL in clear text, for the one call that connects."""
        return None if self.ledger_url is None else self.ledger_url.get_secret_value()


class AdminSettings(BaseSettings):
    """Who may change the experiment at runtime."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    admin_token: SecretStr | None = None
    """Bearer token for the admin endpoints. Unset: admin endpoints refuse."""


class DriftSettings(BaseSettings):
    """Live input drift (PSI) and concept drift (labelled quality) per variant."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    drift_flush_s: float = Field(5.0, gt=0, le=3600)
    """How often an entry worker adds its drift bin counts to the ledger
    (seconds; also at shutdown). A SIGKILLed worker loses at most this much of
    its counts (derived counts: the exposures themselves are never lost)."""
    drift_buffer_rows: int = Field(4096, ge=1, le=1_000_000)
    """Answered rows a worker buffers per variant before it bins them, so
    binning runs once per many requests, not per request."""
    drift_window_hours: int = Field(24, ge=0, le=24 * 365)
    """Hours of the current epoch the PSI gauges read (0: the whole epoch).
    ``GET /ab-test/drift?hours=`` picks another window."""
    drift_refresh_s: float = Field(5.0, ge=0, le=3600)
    """How long a worker reuses its drift view for scrapes (seconds)."""
    concept_window_labels: int = Field(2000, ge=1, le=100_000)
    """Labels in the concept-drift window: a variant's last N labelled answers
    of the current epoch."""
    concept_min_labels: int = Field(200, ge=1)
    """Labels a window needs before it is judged (fewer are too noisy)."""
    concept_brier_margin: float = Field(0.03, ge=0, le=1)
    """Brier points the window may exceed the model's held-out Brier by."""
    concept_auc_margin: float = Field(0.05, ge=0, le=1)
    """ROC AUC points the window may fall below the held-out AUC by."""

    def concept_config(self) -> ConceptDriftConfig:
        return ConceptDriftConfig(
            brier_margin=self.concept_brier_margin,
            auc_margin=self.concept_auc_margin,
            min_labels=self.concept_min_labels,
        )


class AccessSettings(BaseSettings):
    """Who may call the prediction and feedback routes, and how often."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    api_keys_file: Path | None = None
    """Key file (``name:salt:hash[:rate:burst]`` lines, written by ``python -m
    ab_router api-key add``). Unset (the default): /predict, /predict_batch,
    /feedback, /feedback_batch and /explain are open to anyone. Set: each
    needs ``Authorization: Bearer <key>``; the file is re-read within a second
    of a change, so keys rotate without a restart."""
    api_key_rate: float | None = Field(None, gt=0, le=1_000_000)
    """Default requests per second of a key (a batch counts as its rows) when
    its line sets none. Unset: keys without their own rate are not limited."""
    api_key_burst: float | None = Field(None, gt=0, le=10_000_000)
    """Default bucket size (rows) with ``api_key_rate``; defaults to one
    second's worth of the rate."""

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


class StartupSettings(BaseSettings):
    """How the start reacts to configuration mistakes (``serving/startup.py``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    allow_unknown: bool = False
    """Start despite ``CHURN_AB_*`` variables that name no setting, with one
    logged warning instead of a refusal (default off: a typo must not pass)."""
    debug: bool = False
    """Show the traceback of a start-up configuration error, not just its
    one-line message (default off; BentoML's ``--verbose`` does the same)."""


class Settings:
    """Everything, validated together."""

    def __init__(self) -> None:
        self.startup = StartupSettings()
        self.models = ModelSettings()
        self.entry = EntrySettings()
        self.experiment_settings = ExperimentSettings()
        self.ledger = LedgerSettings()
        self.admin = AdminSettings()
        self.drift = DriftSettings()

        self.access = AccessSettings()
        self.experiment = self.experiment_settings.to_config()


class SettingsError(RuntimeError):
    """Start-up configuration is invalid; the message names the variable."""


def load_settings() -> Settings:
    """Read and validate all settings, or raise naming the bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
    except ConfigError as exc:
        variable = f"{ENV_PREFIX}{(exc.field or '').split('.')[0].upper()}"
        raise SettingsError(f"invalid configuration: {variable}: {exc}") from None
    except (ValueError, json.JSONDecodeError) as exc:
        raise SettingsError(f"invalid configuration: {exc}") from None


def require_ledger_location(ledger: LedgerSettings) -> None:
    """Refuse a SQLite ledger path that can never be opened, naming it.

    Checked without creating anything (``bentoml build`` imports the service
    too); a bad path would otherwise crash-loop every entry worker.
    """
    if ledger.url() is not None:
        return
    path = ledger.ledger_path
    variable = f"{ENV_PREFIX}LEDGER_PATH"
    if path.is_dir():
        raise SettingsError(f"invalid configuration: {variable}: {path} is a directory")
    existing = path if path.exists() else path.parent
    while not existing.exists():
        existing = existing.parent
    target = existing if existing != path else path
    if target != path and not target.is_dir():
        raise SettingsError(
            f"invalid configuration: {variable}: {target} is not a directory"
        )
    if not os.access(target, os.W_OK):
        raise SettingsError(
            f"invalid configuration: {variable}: {target} is not writable"
        )
