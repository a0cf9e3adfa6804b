"""The customer feature schema: the single source of truth for the 19 features.

Training, API validation, the fast encoder, the load test and the data
generator all read it. Changing a category here changes what the API accepts
and what the models learn, so bump ``SCHEMA_VERSION`` with any change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SCHEMA_VERSION: Final = "1"

ID_COLUMN: Final = "customerID"
TARGET_COLUMN: Final = "Churn"
TARGET_POSITIVE: Final = "Yes"
TARGET_VALUES: Final = ("No", "Yes")

YES_NO: Final = ("No", "Yes")
INTERNET_DEPENDENT: Final = ("No", "Yes", "No internet service")


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    categories: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class NumericFeature:
    """A numeric feature with an inclusive valid range.

    ``integer`` features reject fractional values; ``blank_allowed`` marks the
    one column (TotalCharges) that the raw CSV leaves blank for new customers.
    """

    name: str
    minimum: float
    maximum: float
    integer: bool
    description: str
    blank_allowed: bool = False


CATEGORICAL_FEATURES: Final[tuple[CategoricalFeature, ...]] = (
    CategoricalFeature("gender", ("Female", "Male"), "Customer gender."),
    CategoricalFeature("Partner", YES_NO, "Has a partner."),
    CategoricalFeature("Dependents", YES_NO, "Has dependents."),
    CategoricalFeature("PhoneService", YES_NO, "Has phone service."),
    CategoricalFeature(
        "MultipleLines", ("No", "Yes", "No phone service"), "Has multiple lines."
    ),
    CategoricalFeature(
        "InternetService", ("DSL", "Fiber optic", "No"), "Internet service type."
    ),
    CategoricalFeature("OnlineSecurity", INTERNET_DEPENDENT, "Online security add-on."),
    CategoricalFeature("OnlineBackup", INTERNET_DEPENDENT, "Online backup add-on."),
    CategoricalFeature(
        "DeviceProtection", INTERNET_DEPENDENT, "Device protection add-on."
    ),
    CategoricalFeature("TechSupport", INTERNET_DEPENDENT, "Tech support add-on."),
    CategoricalFeature("StreamingTV", INTERNET_DEPENDENT, "Streams TV."),
    CategoricalFeature("StreamingMovies", INTERNET_DEPENDENT, "Streams movies."),
    CategoricalFeature(
        "Contract", ("Month-to-month", "One year", "Two year"), "Contract term."
    ),
    CategoricalFeature("PaperlessBilling", YES_NO, "Uses paperless billing."),
    CategoricalFeature(
        "PaymentMethod",
        (
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ),
        "Payment method.",
    ),
)

# Ranges are wide enough for every real customer (max tenure in the data is 72
# months, max monthly charge ~119) yet reject absurd values such as 10^9.
NUMERIC_FEATURES: Final[tuple[NumericFeature, ...]] = (
    NumericFeature("SeniorCitizen", 0, 1, True, "1 if the customer is 65 or older."),
    NumericFeature("tenure", 0, 600, True, "Months with the company."),
    NumericFeature("MonthlyCharges", 0, 10_000, False, "Current monthly charge."),
    NumericFeature(
        "TotalCharges",
        0,
        1_000_000,
        False,
        "Total charged so far; blank in the raw data when tenure is 0.",
        blank_allowed=True,
    ),
)

CATEGORICAL_NAMES: Final = tuple(f.name for f in CATEGORICAL_FEATURES)
NUMERIC_NAMES: Final = tuple(f.name for f in NUMERIC_FEATURES)

# The order the original API documented; requests and CSV columns use it.
FEATURE_ORDER: Final = (
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
)

CATEGORICAL_BY_NAME: Final = {f.name: f for f in CATEGORICAL_FEATURES}
NUMERIC_BY_NAME: Final = {f.name: f for f in NUMERIC_FEATURES}

# Customer ids are opaque strings; the bound keeps ledger rows and logs small.
CUSTOMER_ID_MAX_LENGTH: Final = 64

EXAMPLE_CUSTOMER: Final[dict[str, object]] = {
    "gender": "Female",
    "SeniorCitizen": 1,
    "Partner": "No",
    "Dependents": "No",
    "tenure": 1,
    "PhoneService": "Yes",
    "MultipleLines": "No",
    "InternetService": "Fiber optic",
    "OnlineSecurity": "No",
    "OnlineBackup": "No",
    "DeviceProtection": "No",
    "TechSupport": "No",
    "StreamingTV": "No",
    "StreamingMovies": "No",
    "Contract": "Month-to-month",
    "PaperlessBilling": "Yes",
    "PaymentMethod": "Electronic check",
    "MonthlyCharges": 85.0,
    "TotalCharges": 85.0,
}


# The raw data leaves TotalCharges blank only for the 11 customers with tenure 0:
# they have not been billed yet, so the amount charged so far is 0. A blank with
# tenure > 0 is an error, reported with its row.
BLANK_TOTAL_CHARGES_VALUE: Final = 0.0


assert set(FEATURE_ORDER) == set(CATEGORICAL_NAMES) | set(NUMERIC_NAMES)
assert len(FEATURE_ORDER) == 19
