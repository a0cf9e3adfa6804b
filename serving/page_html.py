"""HTML pieces the experiment page's sections share: numbers with their source.

Every number a section shows goes through :func:`value`: a
``<span class="num">`` carrying the JSON pointer it was read from
(``data-<kind>``, e.g. ``data-stat="/variants/v1/requests"``) and the exact
value (``data-value``), so a test can check the page against the JSON API it
mirrors. Text from the ledger or the configuration goes through
:func:`text` (escaped); a missing number shows as :data:`MISSING`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

MISSING = "—"


@dataclass(frozen=True)
class Section:
    """A block another feature adds to the page, after the variants.

    ``body`` is HTML the supplier built and escaped itself.
    """

    id: str
    heading: str
    body: str


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) to a value."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def at(data: Mapping[str, Any], *parts: str | int, default: Any = None) -> Any:
    """The value at ``parts`` in nested mappings and lists; ``default`` if not
    there (a present ``None`` stays ``None``)."""
    value: Any = data
    for part in parts:
        if isinstance(value, list) and isinstance(part, int):
            if not 0 <= part < len(value):
                return default
        elif not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def number_text(value: Any, spec: str) -> str:
    """A number formatted by ``spec`` with a true minus sign; MISSING for none."""
    if isinstance(value, bool) or value is None:
        return MISSING
    if isinstance(value, float) and not math.isfinite(value):
        return MISSING
    return format(value, spec).replace("-", "−")


def cell_value(value: Any) -> str:
    """The exact value for ``data-value``: repr of a number, "" for none."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def value(
    kind: str,
    data: Mapping[str, Any],
    parts: tuple[str | int, ...],
    spec: str,
    unit: str = "",
) -> str:
    """A number with its source (``kind``: ``stat``, ``summary`` or ``drift``)."""
    found = at(data, *parts)
    shown = number_text(found, spec)
    suffix = f"\u2009{escape(unit)}" if unit and shown != MISSING else ""
    return (
        f'<span class="num" data-{kind}="{escape(pointer(*parts))}" '
        f'data-value="{escape(cell_value(found))}">{escape(shown)}{suffix}</span>'
    )


def text(found: Any) -> str:
    """Escaped text; MISSING for none."""
    return MISSING if found is None else escape(str(found))


def weights_text(weights: Any) -> str:
    """``v1 0.50, v2 0.50``; MISSING when there are none."""
    if not isinstance(weights, Mapping) or not weights:
        return MISSING
    return ", ".join(
        f"{escape(str(v))} {number_text(w, '.2f')}" for v, w in weights.items()
    )


def utc(seconds: Any) -> str:
    """Seconds since the epoch as a UTC time; MISSING for none."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return MISSING
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
