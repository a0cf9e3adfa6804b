"""Check the numbers the experiment page shows against the JSON they come from.

The page marks every number with its source: ``data-stat`` (a JSON pointer
into ``GET /ab-test/stats``), ``data-summary`` (into the ``summary`` of
``GET /ab-test/report``) or ``data-drift`` (into ``GET /ab-test/drift``),
and its exact value in ``data-value``. A number
is right when the exact value equals the JSON value and the text shown is
that value rounded to the digits it shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

SOURCES = ("stat", "summary", "drift")
NUMBER = re.compile(r"[−+-]?\d[\d,]*(?:\.\d+)?(?:e[−+-]?\d+)?")


@dataclass(frozen=True)
class Shown:
    source: str  # one of SOURCES
    pointer: str
    value: str
    text: str


class _Marked(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[Shown] = []
        self._open: list[tuple[str, str, str]] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for source in SOURCES:
            pointer = a.get(f"data-{source}")
            if pointer is not None:
                self._open.append((source, pointer, a.get("data-value") or ""))
                self._text = []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == "span":
            source, pointer, value = self._open.pop()
            self.found.append(Shown(source, pointer, value, "".join(self._text)))


def marked_numbers(html: str) -> list[Shown]:
    parser = _Marked()
    parser.feed(html)
    return parser.found


def resolve(data: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901); KeyError if it is not there."""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        data = data[part] if isinstance(data, Mapping) else data[int(part)]
    return data


def mismatches(
    shown: Iterable[Shown], sources: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Every shown number that does not match its source, as messages."""
    problems = []
    for s in shown:
        expected = resolve(sources[s.source], s.pointer)
        problem = _mismatch(s, expected)
        if problem:
            problems.append(f"{s.source} {s.pointer}: {problem}")
    return problems


def _mismatch(s: Shown, expected: Any) -> str | None:
    if expected is None:
        return None if s.value == "" and "—" in s.text else f"shown {s.text!r}"
    if s.value == "" or float(s.value) != float(expected):
        return f"data-value {s.value!r} != {expected!r}"
    match = NUMBER.search(s.text)
    if match is None:
        return f"no number in {s.text!r}"
    digits = match.group().replace("−", "-").replace(",", "")
    shown = Decimal(digits)
    exponent = shown.as_tuple().exponent
    assert isinstance(exponent, int)
    half_unit = 0.5 * 10.0**exponent
    if abs(float(shown) - float(expected)) > half_unit * (1 + 1e-9) + 1e-12:
        return f"shown {s.text!r} is not {expected!r} rounded"
    return None
