"""Sums kept apart by model version, so the statistics never pool two models.

A variant name (``v2``) can be served by several model versions over an
epoch (issue #18): the ledger keys its labelled rollups by variant *and*
``model_id``. Two models' labels must not be judged as one sample, yet the
same model's rollups (several rows: modes, workers, time windows) do add up.
:class:`ModelSplit` holds both views:

- :meth:`ModelSplit.by_model`: the sums per group and model, never pooled;
- :meth:`ModelSplit.for_statistics`: one sum per group, either of the model
  the caller names per group (the live view passes the variant's current
  model) or, if none is named, of the only model; a group with several
  models and no choice raises :class:`MixedModelsError` instead of pooling;
- :meth:`ModelSplit.pooled`: the totals across models, for counts a page
  may show next to the statistics, never for the statistics themselves.

Which model a variant is judged on is one rule, :func:`models_in_force`,
used by the live view (``serving.model_choice``) and the offline report.

A group is a variant for :class:`~.labelled_sums.LabelledSums` (model: its
``model_id``) or a ``(champion, challenger)`` pair for
:class:`~.labelled_sums.PairedSums` (model: the two ``model_id``).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar


class _Addable(Protocol):
    def __add__(self, other: Self, /) -> Self: ...


G = TypeVar("G", bound=Hashable)
M = TypeVar("M", bound=Hashable)
T = TypeVar("T", bound=_Addable)


class MixedModelsError(ValueError):
    """A group holds labels of several models and no model was chosen."""

    def __init__(self, group: object, models: Iterable[object]) -> None:
        self.group = group
        self.models = tuple(models)
        super().__init__(
            f"{group!r} has labels from {len(self.models)} models "
            f"({', '.join(map(repr, self.models))}); the statistics never pool "
            "models: choose one"
        )


@dataclass(frozen=True)
class ModelSplit(Generic[G, M, T]):
    """Sums per group and model (see the module docstring)."""

    parts: Mapping[G, Mapping[M, T]]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[tuple[G, M], T]]) -> ModelSplit[G, M, T]:
        """From ``((group, model), sums)`` rows; rows of the same key add up."""
        parts: dict[G, dict[M, T]] = {}
        for (group, model), sums in rows:
            models = parts.setdefault(group, {})
            known = models.get(model)
            models[model] = sums if known is None else known + sums
        return cls(parts)

    @classmethod
    def from_keyed(cls, keyed: Mapping[tuple[G, M], T]) -> ModelSplit[G, M, T]:
        return cls.from_rows(keyed.items())

    def models(self, group: G) -> tuple[M, ...]:
        return tuple(self.parts.get(group, {}))

    def by_model(self, group: G) -> Mapping[M, T]:
        return self.parts.get(group, {})

    def mixed(self) -> dict[G, tuple[M, ...]]:
        """Groups that hold labels of more than one model."""
        return {g: tuple(m) for g, m in self.parts.items() if len(m) > 1}

    def for_statistics(self, chosen: Mapping[G, M] | None = None) -> dict[G, T]:
        """One model's sums per group: ``chosen[group]`` if given, else the
        only one. A chosen model without labels is left out (no labels yet);
        several models and no choice raise :class:`MixedModelsError`."""
        chosen = chosen or {}
        out: dict[G, T] = {}
        for group, models in self.parts.items():
            if group in chosen:
                if chosen[group] in models:
                    out[group] = models[chosen[group]]
            elif len(models) == 1:
                out[group] = next(iter(models.values()))
            else:
                raise MixedModelsError(group, models)
        return out

    def pooled(self) -> dict[G, T]:
        """Totals across models per group: for counts only, never statistics."""
        out: dict[G, T] = {}
        for group, models in self.parts.items():
            values = iter(models.values())
            total = next(values)
            for sums in values:
                total = total + sums
            out[group] = total
        return out


def models_in_force(
    seen: Mapping[str, Collection[int]], recorded: Iterable[tuple[str, int]]
) -> dict[str, int]:
    """variant -> the model id it is judged on, for each variant in ``seen``.

    The first model ``recorded`` for the epoch (``(variant, model id)`` pairs
    in the order they were recorded: ``Ledger.epoch_models``); for a variant
    with none recorded (an epoch written before models were), the highest id
    in ``seen[variant]``, since ids only grow. A variant with no model seen
    is left out.
    """
    first: dict[str, int] = {}
    for variant, model_id in recorded:
        first.setdefault(variant, model_id)
    return {v: first.get(v, max(ids)) for v, ids in seen.items() if ids}


__all__ = ["MixedModelsError", "ModelSplit", "models_in_force"]
