"""Request and response models of the public API (they shape the OpenAPI page)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    model_validator,
)

from ab_router.config import CHALLENGER, CHAMPION
from churn_features.customer import Customer
from churn_features.schema import CUSTOMER_ID_MAX_LENGTH

MAX_FEEDBACK_BATCH = 10_000


class PredictionResponse(BaseModel):
    """The original API's answer, plus the experiment facts behind it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "request_id": "0b5c1e9e-3f55-4c9b-9d8e-0a1f5b1f7c11",
                "model_version": CHALLENGER,
                "prediction": 1,
                "churn_probability": 0.71,
                "will_churn": True,
                "confidence": 0.71,
                "latency_ms": 1.2,
                "experiment": f"churn-{CHAMPION}-vs-{CHALLENGER}",
                "epoch": 1,
                "assigned_variant": CHALLENGER,
                "fallback": False,
                "assignment_unit": "customer",
            }
        }
    )

    request_id: str = Field(description="Id to send back with the outcome.")
    model_version: str = Field(
        description="Variant that answered (champion or challenger)."
    )
    prediction: int = Field(description="1 = will churn, 0 = will stay.")
    churn_probability: float = Field(description="Predicted churn probability.")
    will_churn: bool
    confidence: float = Field(description="Probability of the predicted class.")
    latency_ms: float = Field(description="Server time for this request.")
    experiment: str
    epoch: int
    assigned_variant: str = Field(description="Variant the experiment chose.")
    fallback: bool = Field(
        description="True when the assigned variant failed and the other answered."
    )
    assignment_unit: Literal["customer", "request"]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[Customer] = Field(  # type: ignore[valid-type]
        min_length=1, description="Customers to score, each routed on its own."
    )


class BatchResponse(BaseModel):
    predictions: list[PredictionResponse]
    count: int
    latency_ms: float


class FeedbackItem(BaseModel):
    """An observed outcome, joined to an exposure by request id or customer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"request_id": "0b5c1e9e-...", "churned": True}},
    )

    request_id: str | None = Field(default=None, min_length=1, max_length=64)
    customerID: str | None = Field(
        default=None, min_length=1, max_length=CUSTOMER_ID_MAX_LENGTH
    )
    churned: StrictBool
    observed_at: StrictFloat | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="When the outcome was observed (unix seconds).",
    )

    @model_validator(mode="after")
    def _one_key(self) -> FeedbackItem:
        if (self.request_id is None) == (self.customerID is None):
            raise ValueError("give exactly one of request_id or customerID")
        return self


class FeedbackResult(BaseModel):
    request_id: str
    outcome: Literal["accepted", "duplicate"]


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_BATCH)


class FeedbackBatchResult(BaseModel):
    results: list[FeedbackResult]
    accepted: int
    duplicate: int


class VariantExplanation(BaseModel):
    """One variant's explanation; ``base_value + Σ contributions == output``."""

    variant: str
    model_tag: str
    space: Literal["probability", "log_odds"] = Field(
        description="What base value and contributions add up to: the churn "
        "probability (v1, forest) or its log-odds (v2, boosting)."
    )
    base_value: float = Field(description="Expected model output over training.")
    contributions: dict[str, float] = Field(
        description="Each of the 19 input features' SHAP value, one-hot columns "
        "summed; positive pushes towards churn."
    )
    output: float = Field(description="The model output in `space`.")
    churn_probability: float = Field(description="What /predict would answer.")
    top_towards_churn: list[str] = Field(
        description="Features pushing towards churn, strongest first (at most 5)."
    )


class ExplainResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "experiment": f"churn-{CHAMPION}-vs-{CHALLENGER}",
                "epoch": 1,
                "assigned_variant": CHAMPION,
                "explanations": [
                    {
                        "variant": CHAMPION,
                        "model_tag": "churn_v1:abc",
                        "space": "probability",
                        "base_value": 0.27,
                        "contributions": {"tenure": 0.117, "Contract": 0.084},
                        "output": 0.79,
                        "churn_probability": 0.79,
                        "top_towards_churn": ["tenure", "Contract"],
                    }
                ],
            }
        }
    )

    experiment: str
    epoch: int
    assigned_variant: str = Field(description="Variant the customer is assigned to.")
    explanations: list[VariantExplanation] = Field(
        description="The assigned variant's, or every variant's with ?variants=all."
    )
