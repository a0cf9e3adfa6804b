"""Catch ``CHURN_AB_*`` variables that name no setting, and suggest the real one.

pydantic-settings ignores variables it does not know, so a typo such as
``CHURN_AB_WIEGHTS`` would silently leave the default in force. The known
names are derived from the settings classes themselves (every
``BaseSettings`` subclass read with the ``CHURN_AB_`` prefix), so a field added
to any of them is known without touching this module.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping

from pydantic_settings import BaseSettings

from serving.settings import ENV_PREFIX, SettingsError

logger = logging.getLogger(__name__)

# Variables with our prefix read by tools around the service, not by it: they
# may sit in the same shell or .env file and must not stop a start.
OTHER_TOOLS_VARIABLES: Mapping[str, str] = {
    "CHURN_AB_IMAGE": "deploy/: the API image compose runs",
    "CHURN_AB_PORT": "deploy/: the host port compose publishes",
    "CHURN_AB_KEEP_BASE_IMAGE": "tests/image: keep the base image a run built",
    "CHURN_AB_BENTO_DIR": "tests/image: the checkout the image is built from",
    "CHURN_AB_PAGE_SCREENSHOT": "tests/e2e: where the page test keeps its screenshot",
}

# difflib's own default, measured on the part after the prefix (which every
# name shares and would otherwise make any two names look alike): "WIEGHTS"
# vs "WEIGHTS" scores 0.86, "ADMIN_KEY" vs "ADMIN_TOKEN" 0.8.
SUGGESTION_CUTOFF = 0.6

ALLOW_UNKNOWN_VARIABLE = f"{ENV_PREFIX}ALLOW_UNKNOWN"


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class read with the ``CHURN_AB_`` prefix, in definition order."""
    found: list[type[BaseSettings]] = []
    pending = list(BaseSettings.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending[:0] = cls.__subclasses__()
        if cls.model_config.get("env_prefix") == ENV_PREFIX and cls not in found:
            found.append(cls)
    return found


def variable_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of ``cls``."""
    alias = cls.model_fields[field].validation_alias
    name = alias if isinstance(alias, str) else f"{ENV_PREFIX}{field}"
    return name.upper()


def setting_variables() -> list[str]:
    """Every variable a settings class reads, in definition order."""
    return [
        variable_name(cls, field)
        for cls in settings_classes()
        for field in cls.model_fields
    ]


def known_variables() -> frozenset[str]:
    """Setting variables plus the ones other tools of the project read."""
    return frozenset(setting_variables()) | frozenset(OTHER_TOOLS_VARIABLES)


def suggestion(name: str, known: Iterable[str]) -> str | None:
    """The known variable closest to ``name``, or None when none is close."""
    by_suffix = {k.removeprefix(ENV_PREFIX): k for k in known}
    suffix = name.upper().removeprefix(ENV_PREFIX)
    close = difflib.get_close_matches(
        suffix, sorted(by_suffix), n=1, cutoff=SUGGESTION_CUTOFF
    )
    return by_suffix[close[0]] if close else None


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """``CHURN_AB_*`` names in ``environ`` that no setting or tool reads.

    Compared case-insensitively, as pydantic-settings reads them.
    """
    names = frozenset(known)
    return sorted(
        key
        for key in environ
        if key.upper().startswith(ENV_PREFIX) and key.upper() not in names
    )


def describe_unknown(name: str, known: Iterable[str]) -> str:
    """``unknown setting X: did you mean Y?``, or that nothing is close."""
    closest = suggestion(name, known)
    if closest is not None:
        return f"unknown setting {name}: did you mean {closest}?"
    return f"unknown setting {name}: no setting has a similar name"


def check_variable_names(environ: Mapping[str, str], *, allow_unknown: bool) -> None:
    """Refuse unknown ``CHURN_AB_*`` variables, or warn once when allowed."""
    known = known_variables()
    unknown = unknown_variables(environ, known)
    if not unknown:
        return
    problems = "; ".join(describe_unknown(name, known) for name in unknown)
    if allow_unknown:
        logger.warning("%s (ignored: %s is set)", problems, ALLOW_UNKNOWN_VARIABLE)
        return
    raise SettingsError(
        f"{problems} (python -m serving config lists every setting; "
        f"{ALLOW_UNKNOWN_VARIABLE}=1 starts anyway)"
    )
