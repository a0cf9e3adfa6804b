"""The effective configuration: every setting, its value and where it came from.

Backs ``python -m serving config``, so an operator can check a deployment
without starting it. Secrets never leave masked: a ``SecretStr`` shows as
``********`` (a URL keeps its scheme, user and host, never its password), and so
does any field whose name says it holds a token, key, secret or password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretBytes, SecretStr

from serving.config_check import settings_classes, variable_name

MASK = "********"
UNSET = "(unset)"
DEFAULT = "default"
ENVIRONMENT = "environment"

# Field-name words that mark a secret even when its type does not say so.
_SECRET_WORDS = frozenset({"token", "secret", "password", "key", "keys"})
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class ConfigRow:
    """One setting as the service would see it."""

    variable: str
    value: str
    source: str


def effective_configuration(environ: Mapping[str, str]) -> list[ConfigRow]:
    """One row per setting, in definition order, read from ``environ``.

    Raises pydantic's ``ValidationError`` like the service would; callers
    validate first with ``load_settings`` for the one-line message.
    """
    present = {key.upper() for key in environ}
    rows = []
    for cls in settings_classes():
        instance = cls()
        for field in cls.model_fields:
            variable = variable_name(cls, field)
            value = getattr(instance, field)
            shown = _masked(value) if _is_secret_name(field) else _shown(value)
            source = ENVIRONMENT if variable in present else DEFAULT
            rows.append(ConfigRow(variable, shown, source))
    return rows


def render_table(rows: list[ConfigRow]) -> str:
    """Aligned ``SETTING  VALUE  SOURCE`` lines."""
    header = ConfigRow("SETTING", "VALUE", "SOURCE")
    width_name = max(len(r.variable) for r in [header, *rows])
    width_value = max(len(r.value) for r in [header, *rows])
    return "\n".join(
        f"{r.variable:<{width_name}}  {r.value:<{width_value}}  {r.source}".rstrip()
        for r in [header, *rows]
    )


def render_json(rows: list[ConfigRow]) -> str:
    """``{variable: {"value": ..., "source": ...}}`` for scripts."""
    return json.dumps(
        {r.variable: {"value": r.value, "source": r.source} for r in rows}, indent=2
    )


def _is_secret_name(field: str) -> bool:
    return bool(_SECRET_WORDS & set(field.lower().split("_")))


def _masked(value: object) -> str:
    if value is None:
        return UNSET
    if isinstance(value, SecretStr | SecretBytes):
        return _shown(value)
    return MASK


def _shown(value: object) -> str:
    if value is None:
        return UNSET
    if isinstance(value, SecretStr):
        return _mask_url(value.get_secret_value())
    if isinstance(value, SecretBytes):
        return MASK
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps({str(k): _plain(v) for k, v in value.items()})
    if isinstance(value, tuple | list | set | frozenset):
        return ",".join(_shown(v) for v in value)
    return str(value)


def _plain(value: object) -> object:
    """A JSON-able value, secrets masked (mapping values of a setting)."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return _shown(value)


def _mask_url(secret: str) -> str:
    """A URL without its password (userinfo or query); anything else masked."""
    parts = urlsplit(secret)
    if not parts.scheme or not parts.netloc:
        return MASK
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}"
    query = urlencode(
        [
            (k, MASK if k.lower() in _SECRET_QUERY_KEYS else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
