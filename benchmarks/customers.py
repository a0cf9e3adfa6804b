"""Realistic customers for load generation, drawn from the feature schema.

Two risk profiles bracket the traffic a churn service sees: new month-to-month
fibre customers paying by electronic check (high churn risk) and long-tenure
customers on two-year contracts with automatic payment (low risk). Every value
comes from ``churn_features.schema``, so a schema change cannot leave the load
test posting bodies the API rejects.
"""

from __future__ import annotations

import random
from typing import Any

from churn_features.schema import (
    CATEGORICAL_BY_NAME,
    FEATURE_ORDER,
    ID_COLUMN,
    NUMERIC_BY_NAME,
)

HIGH_RISK_SHARE = 0.4

# Per-profile preferences; a feature not listed here is drawn uniformly.
_HIGH_RISK: dict[str, tuple[str, ...]] = {
    "Contract": ("Month-to-month",),
    "InternetService": ("Fiber optic",),
    "PaymentMethod": ("Electronic check",),
    "OnlineSecurity": ("No",),
    "TechSupport": ("No",),
    "PaperlessBilling": ("Yes",),
    "Partner": ("No",),
    "Dependents": ("No",),
}
_LOW_RISK: dict[str, tuple[str, ...]] = {
    "Contract": ("One year", "Two year"),
    "InternetService": ("DSL", "No"),
    "PaymentMethod": ("Bank transfer (automatic)", "Credit card (automatic)"),
    "Partner": ("Yes",),
    "Dependents": ("Yes", "No"),
}
_INTERNET_ADDONS = (
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)


def _choice(
    rng: random.Random, name: str, preferred: dict[str, tuple[str, ...]]
) -> str:
    allowed = CATEGORICAL_BY_NAME[name].categories
    options = [c for c in preferred.get(name, allowed) if c in allowed]
    return rng.choice(options or list(allowed))


def make_customer(
    rng: random.Random, *, high_risk: bool, customer_id: str | None = None
) -> dict[str, Any]:
    """One consistent customer (no DSL add-ons without internet, etc.)."""
    preferred = _HIGH_RISK if high_risk else _LOW_RISK
    customer: dict[str, Any] = {}
    for name in FEATURE_ORDER:
        if name in CATEGORICAL_BY_NAME:
            customer[name] = _choice(rng, name, preferred)
    if customer["InternetService"] == "No":
        for name in _INTERNET_ADDONS:
            customer[name] = "No internet service"
    elif any(customer[n] == "No internet service" for n in _INTERNET_ADDONS):
        for name in _INTERNET_ADDONS:
            if customer[name] == "No internet service":
                customer[name] = rng.choice(("No", "Yes"))
    if customer["PhoneService"] == "No":
        customer["MultipleLines"] = "No phone service"
    elif customer["MultipleLines"] == "No phone service":
        customer["MultipleLines"] = rng.choice(("No", "Yes"))

    tenure_max = int(min(72, NUMERIC_BY_NAME["tenure"].maximum))
    tenure = rng.randint(0, 6) if high_risk else rng.randint(24, tenure_max)
    monthly = round(rng.uniform(70.0, 110.0) if high_risk else rng.uniform(20, 80), 2)
    customer["SeniorCitizen"] = int(rng.random() < (0.3 if high_risk else 0.1))
    customer["tenure"] = tenure
    customer["MonthlyCharges"] = monthly
    customer["TotalCharges"] = round(monthly * tenure, 2)
    if customer_id is not None:
        customer[ID_COLUMN] = customer_id
    return {k: customer[k] for k in (*FEATURE_ORDER, ID_COLUMN) if k in customer}


def make_customers(
    n: int, seed: int = 7, *, with_ids: bool = True
) -> list[dict[str, Any]]:
    """``n`` customers, ``HIGH_RISK_SHARE`` of them high risk, reproducibly."""
    rng = random.Random(seed)
    return [
        make_customer(
            rng,
            high_risk=rng.random() < HIGH_RISK_SHARE,
            customer_id=f"bench-{seed}-{i:06d}" if with_ids else None,
        )
        for i in range(n)
    ]
