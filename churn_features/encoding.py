"""Turn customers into model inputs without pandas on the request path.

Two steps, both driven by the schema:

1. ``schema_codes``: a validated customer becomes 19 floats in ``FEATURE_ORDER``
   (categories as their index in the schema, numbers as they are). This is all
   the entry service does, so it never needs a model.
2. ``FastEncoder``: built from a *fitted* pipeline's ``ColumnTransformer``, it
   maps code rows to exactly the columns the pipeline learned, vectorised over
   a batch. A test proves parity with the pipeline on the whole sample file.

scikit-learn is imported only by the functions that build or read a pipeline:
an entry worker needs ``schema_codes`` alone, and importing sklearn (with the
pandas it pulls in) costs every server process ~0.5 s of CPU otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from churn_features.schema import (
    CATEGORICAL_BY_NAME,
    CATEGORICAL_FEATURES,
    CATEGORICAL_NAMES,
    FEATURE_ORDER,
    NUMERIC_NAMES,
)

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

PREPROCESS_STEP = "preprocess"
MODEL_STEP = "model"

_FEATURE_POSITION = {name: i for i, name in enumerate(FEATURE_ORDER)}
_CATEGORY_CODE = {
    f.name: {category: float(code) for code, category in enumerate(f.categories)}
    for f in CATEGORICAL_FEATURES
}


def build_preprocessor() -> ColumnTransformer:
    """The preprocessing both models share: one-hot categories, raw numbers.

    Categories come from the schema, so an unseen category is an error rather
    than a silent all-zeros row.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    one_hot = OneHotEncoder(
        categories=[list(f.categories) for f in CATEGORICAL_FEATURES],
        handle_unknown="error",
        sparse_output=False,
        dtype=np.float64,
    )
    return ColumnTransformer(
        [
            ("categorical", one_hot, list(CATEGORICAL_NAMES)),
            ("numeric", "passthrough", list(NUMERIC_NAMES)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def schema_codes(customer: Mapping[str, Any]) -> list[float]:
    """One validated customer as 19 floats in ``FEATURE_ORDER``.

    Raises ``KeyError`` naming the feature for a missing field or unknown
    category; API validation runs first, so that is a programming error here.
    """
    row: list[float] = []
    for name in FEATURE_ORDER:
        value = customer[name]
        codes = _CATEGORY_CODE.get(name)
        row.append(codes[value] if codes is not None else float(value))
    return row


def records_to_codes(customers: Iterable[Mapping[str, Any]]) -> NDArray[np.float64]:
    """Many customers as an ``(n, 19)`` code matrix."""
    rows = [schema_codes(c) for c in customers]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_ORDER))


def _is_passthrough(transformer: object) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    # A fitted ColumnTransformer stores "passthrough" as an identity
    # FunctionTransformer; both spell "copy the column".
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


@dataclass(frozen=True)
class FastEncoder:
    """Maps schema-code rows onto the columns a fitted preprocessor produces.

    ``category_columns[j]`` gives, for feature j's schema code, the output
    column it lights up (-1 for a category the pipeline dropped);
    ``numeric_columns`` pairs input positions with output columns.
    """

    width: int
    category_inputs: tuple[int, ...]
    category_columns: tuple[NDArray[np.int64], ...]
    numeric_inputs: NDArray[np.int64]
    numeric_outputs: NDArray[np.int64]

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> FastEncoder:
        from sklearn.compose import ColumnTransformer

        preprocessor = pipeline.named_steps[PREPROCESS_STEP]
        if not isinstance(preprocessor, ColumnTransformer):
            raise TypeError(f"step {PREPROCESS_STEP!r} must be a ColumnTransformer")
        return cls.from_preprocessor(preprocessor)

    @classmethod
    def from_preprocessor(cls, preprocessor: ColumnTransformer) -> FastEncoder:
        from sklearn.preprocessing import OneHotEncoder

        offset = 0
        category_inputs: list[int] = []
        category_columns: list[NDArray[np.int64]] = []
        numeric_inputs: list[int] = []
        numeric_outputs: list[int] = []
        for name, transformer, columns in preprocessor.transformers_:
            if name == "remainder":
                continue
            if isinstance(transformer, OneHotEncoder):
                for column, learned in zip(
                    columns, transformer.categories_, strict=True
                ):
                    schema_categories = CATEGORICAL_BY_NAME[column].categories
                    position = {str(c): offset + i for i, c in enumerate(learned)}
                    lookup = np.array(
                        [position.get(c, -1) for c in schema_categories],
                        dtype=np.int64,
                    )
                    category_inputs.append(_FEATURE_POSITION[column])
                    category_columns.append(lookup)
                    offset += len(learned)
            elif _is_passthrough(transformer):
                for column in columns:
                    numeric_inputs.append(_FEATURE_POSITION[column])
                    numeric_outputs.append(offset)
                    offset += 1
            else:
                raise TypeError(
                    f"transformer {name!r} ({type(transformer).__name__}) is not "
                    "supported by the fast encoder"
                )
        return cls(
            width=offset,
            category_inputs=tuple(category_inputs),
            category_columns=tuple(category_columns),
            numeric_inputs=np.asarray(numeric_inputs, dtype=np.int64),
            numeric_outputs=np.asarray(numeric_outputs, dtype=np.int64),
        )

    def encode(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """Encode an ``(n, 19)`` code matrix into the model's ``(n, width)`` input."""
        codes = np.asarray(codes, dtype=np.float64)
        n = codes.shape[0]
        out = np.zeros((n, self.width), dtype=np.float64)
        rows = np.arange(n)
        for position, lookup in zip(
            self.category_inputs, self.category_columns, strict=True
        ):
            columns = lookup[codes[:, position].astype(np.int64)]
            hit = columns >= 0
            out[rows[hit], columns[hit]] = 1.0
        out[:, self.numeric_outputs] = codes[:, self.numeric_inputs]
        return out
