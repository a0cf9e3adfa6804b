"""The one name for how challenger and champion are compared: the design.

Two designs exist. *Independent*: split and canary traffic send each request
to one variant, so the two variants' labels are independent samples.
*Paired*: in shadow mode both variants score the same request, so each label
yields one per-row difference. :func:`design_of` is the only place a traffic
:class:`~ab_router.records.Mode` becomes a :class:`Design`.
"""

from __future__ import annotations

from enum import StrEnum

from ab_router.records import Mode


class Design(StrEnum):
    """How the challenger − champion comparison is analysed."""

    INDEPENDENT = "independent"
    PAIRED = "paired"


def design_of(mode: Mode | str | None, *, has_pairs: bool = True) -> Design:
    """The design for traffic in ``mode``.

    Shadow traffic is paired only if it carries the challenger's scores
    (``has_pairs``); the caller decides that from all rows, labelled or not,
    so the design does not flip when the first label arrives.
    """
    return Design.PAIRED if mode == Mode.SHADOW and has_pairs else Design.INDEPENDENT
