"""The request model of one customer, generated from the schema.

Generated rather than written out so the API can never drift from what the
models were trained on. Validation is strict on purpose:

- numbers must be JSON numbers (``"85.0"`` and ``true`` are rejected), and
  integer features must be JSON integers;
- NaN and ±Infinity are rejected;
- categories must match exactly, case included;
- unknown fields are rejected, so a typo such as ``customerId`` fails loudly
  instead of silently losing the sticky assignment.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, create_model

from churn_features.schema import (
    CATEGORICAL_BY_NAME,
    CUSTOMER_ID_MAX_LENGTH,
    EXAMPLE_CUSTOMER,
    FEATURE_ORDER,
    ID_COLUMN,
    NUMERIC_BY_NAME,
)


class _StrictCustomerBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        # OpenAPI 3.0 (BentoML's docs page) knows "example", not "examples".
        json_schema_extra={"example": {**EXAMPLE_CUSTOMER, ID_COLUMN: "7590-VHVEG"}},  # type: ignore[dict-item]
    )


def _field_definition(name: str) -> tuple[Any, Any]:
    categorical = CATEGORICAL_BY_NAME.get(name)
    if categorical is not None:
        allowed = Literal[categorical.categories]  # type: ignore[valid-type,name-defined]
        return (allowed, Field(..., description=categorical.description))
    numeric = NUMERIC_BY_NAME[name]
    # StrictFloat still takes a JSON integer such as 85 (and stores 85.0).
    base: Any = StrictInt if numeric.integer else StrictFloat
    constrained = Annotated[
        base,
        Field(
            ...,
            ge=numeric.minimum,
            le=numeric.maximum,
            description=numeric.description,
            allow_inf_nan=False,
        ),
    ]
    return (constrained, ...)


_FIELDS: dict[str, Any] = {name: _field_definition(name) for name in FEATURE_ORDER}
_FIELDS[ID_COLUMN] = (
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=CUSTOMER_ID_MAX_LENGTH,
        description=(
            "Optional customer id. When present, the customer is assigned to the "
            "same model on every call (sticky hashing)."
        ),
    ),
)

Customer: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "Customer",
    __base__=_StrictCustomerBase,
    __doc__="One customer's features, as the original API accepted them.",
    **_FIELDS,
)
