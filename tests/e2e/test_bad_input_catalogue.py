"""Every kind of malformed request, against the real server, table-driven.

Each case must get a 4xx whose JSON body names the field (where there is one)
and the rule, never a 5xx or a traceback, and must leave the ledger untouched.
The decisions behind each row are in docs/failure-behaviour.md.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from churn_features.schema import (
    CATEGORICAL_FEATURES,
    EXAMPLE_CUSTOMER,
    FEATURE_ORDER,
    NUMERIC_FEATURES,
)
from tests.support.bento_server import BentoServer
from tests.support.faults import ledger_counts

JSON = "application/json"
MAX_BATCH = 10_000  # CHURN_AB_MAX_BATCH_CUSTOMERS default
MIB = 1024 * 1024


def dumps(value: Any) -> bytes:
    # allow_nan writes the NaN / Infinity tokens that Python's json accepts.
    return json.dumps(value, allow_nan=True).encode()


def customer(**overrides: Any) -> dict[str, Any]:
    return {**EXAMPLE_CUSTOMER, **overrides}


def without(name: str) -> dict[str, Any]:
    return {k: v for k, v in EXAMPLE_CUSTOMER.items() if k != name}


@dataclass(frozen=True)
class Context:
    """What some bodies need from the server: a request already labelled."""

    labelled_request_id: str
    labelled_customer_id: str


Body = bytes | Callable[[Context], bytes]


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: Body
    rule: str  # regex the response body must match (the rule that was broken)
    field: str | None = None  # the field the response body must name
    content_type: str | None = JSON
    statuses: tuple[int, ...] = ()  # empty: any 4xx


def _predict_cases() -> list[Case]:
    cases: list[Case] = []
    for name in FEATURE_ORDER:
        cases.append(
            Case(
                f"predict-missing-{name}",
                "/predict",
                dumps(without(name)),
                "missing",
                name,
            )
        )
        cases.append(
            Case(
                f"predict-null-{name}",
                "/predict",
                dumps(customer(**{name: None})),
                "type|literal",
                name,
            )
        )
    for feature in NUMERIC_FEATURES:
        name = feature.name
        int_or_float = "int_type" if feature.integer else "float_type"
        cases += [
            Case(
                f"predict-string-{name}",
                "/predict",
                dumps(customer(**{name: str(EXAMPLE_CUSTOMER[name])})),
                int_or_float,
                name,
            ),
            Case(
                f"predict-bool-{name}",
                "/predict",
                dumps(customer(**{name: True})),
                int_or_float,
                name,
            ),
            Case(
                f"predict-nan-{name}",
                "/predict",
                dumps(customer(**{name: float("nan")})),
                "finite_number|int_type",
                name,
            ),
            Case(
                f"predict-inf-{name}",
                "/predict",
                dumps(customer(**{name: float("inf")})),
                "finite_number|int_type",
                name,
            ),
            Case(
                f"predict-minus-inf-{name}",
                "/predict",
                dumps(customer(**{name: float("-inf")})),
                "finite_number|int_type",
                name,
            ),
            Case(
                f"predict-negative-{name}",
                "/predict",
                dumps(customer(**{name: -1})),
                "greater_than_equal",
                name,
            ),
            Case(
                f"predict-absurd-{name}",
                "/predict",
                dumps(customer(**{name: 10**12})),
                "less_than_equal",
                name,
            ),
            Case(
                f"predict-list-{name}",
                "/predict",
                dumps(customer(**{name: [1]})),
                int_or_float,
                name,
            ),
        ]
        if feature.integer:
            cases.append(
                Case(
                    f"predict-fraction-{name}",
                    "/predict",
                    dumps(customer(**{name: 0.5})),
                    "int",
                    name,
                )
            )
    for feature in CATEGORICAL_FEATURES:
        name = feature.name
        first = feature.categories[0]
        cases += [
            Case(
                f"predict-unknown-category-{name}",
                "/predict",
                dumps(customer(**{name: "Martian"})),
                "literal_error",
                name,
            ),
            Case(
                f"predict-wrong-case-{name}",
                "/predict",
                dumps(customer(**{name: first.swapcase()})),
                "literal_error",
                name,
            ),
            Case(
                f"predict-padded-{name}",
                "/predict",
                dumps(customer(**{name: f" {first}"})),
                "literal_error",
                name,
            ),
            Case(
                f"predict-number-for-category-{name}",
                "/predict",
                dumps(customer(**{name: 1})),
                "literal_error",
                name,
            ),
        ]
    valid = json.dumps(EXAMPLE_CUSTOMER)
    cases += [
        Case(
            "predict-extra-field",
            "/predict",
            dumps(customer(plan="gold")),
            "extra_forbidden",
            "plan",
        ),
        Case(
            "predict-typo-customerId",
            "/predict",
            dumps(customer(customerId="a")),
            "extra_forbidden",
            "customerId",
        ),
        Case(
            "predict-customer-id-10kB",
            "/predict",
            dumps(customer(customerID="x" * 10_240)),
            "string_too_long",
            "customerID",
        ),
        Case(
            "predict-customer-id-empty",
            "/predict",
            dumps(customer(customerID="")),
            "string_too_short",
            "customerID",
        ),
        Case(
            "predict-customer-id-number",
            "/predict",
            dumps(customer(customerID=7590)),
            "string_type",
            "customerID",
        ),
        Case(
            "predict-customer-id-1MB",
            "/predict",
            dumps(customer(customerID="x" * MIB)),
            "string_too_long",
            "customerID",
        ),
        Case(
            "predict-customer-id-8MB",
            "/predict",
            dumps(customer(customerID="x" * (8 * MIB))),
            "body_too_large",
            "body",
        ),
        Case("predict-empty-body", "/predict", b"", "missing"),
        Case("predict-empty-object", "/predict", b"{}", "missing", "gender"),
        Case("predict-not-json", "/predict", b"tenure=1&gender=Female", "json_invalid"),
        Case(
            "predict-truncated-json",
            "/predict",
            valid[: len(valid) // 2].encode(),
            "json_invalid",
        ),
        Case("predict-json-array", "/predict", f"[{valid}]".encode(), "model_type"),
        Case("predict-json-null", "/predict", b"null", "model_type"),
        Case("predict-json-string", "/predict", b'"hello"', "model_type"),
        Case(
            "predict-deeply-nested",
            "/predict",
            b"[" * 100_000 + b"]" * 100_000,
            "json_invalid|recursion",
        ),
        Case(
            "predict-deeply-nested-in-field",
            "/predict",
            valid[:-1].encode() + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "json_invalid|recursion|extra_forbidden",
        ),
        Case(
            "predict-non-utf8",
            "/predict",
            valid.replace('"Female"', '"F\xffmale"').encode("latin-1"),
            "json_invalid|utf|unicode",
        ),
        Case(
            "predict-bom", "/predict", b"\xef\xbb\xbf" + valid.encode(), "json_invalid"
        ),
        Case(
            "predict-pickle",
            "/predict",
            pickle.dumps(EXAMPLE_CUSTOMER),
            "pickle",
            content_type="application/vnd.bentoml+pickle",
            statuses=(415,),
        ),
        Case(
            "predict-duplicate-key",
            "/predict",
            b'{"tenure": "x", ' + valid[1:].encode(),
            "duplicate",
            "tenure",
            statuses=(400,),
        ),
        Case(
            "predict-text-plain",
            "/predict",
            valid.encode(),
            "media.type|content.type|json",
            "Content-Type",
            content_type="text/plain",
            statuses=(415,),
        ),
        Case(
            "predict-octet-stream",
            "/predict",
            valid.encode(),
            "media.type|content.type|json",
            "Content-Type",
            content_type="application/octet-stream",
            statuses=(415,),
        ),
        Case(
            "predict-multipart-without-boundary",
            "/predict",
            valid.encode(),
            "media.type|content.type|json",
            "Content-Type",
            content_type="multipart/form-data",
            statuses=(415,),
        ),
        Case(
            "predict-form-urlencoded",
            "/predict",
            b"gender=Female&tenure=1",
            "media.type|content.type|json",
            "Content-Type",
            content_type="application/x-www-form-urlencoded",
            statuses=(415,),
        ),
        Case("predict-xml-body", "/predict", b"<customer/>", "json_invalid|media.type"),
        Case(
            "predict-12MiB-whitespace",
            "/predict",
            valid[:-1].encode() + b" " * (12 * MIB) + b"}",
            "too.large|body|bytes",
            statuses=(413,),
        ),
    ]
    return cases


def _batch_cases() -> list[Case]:
    valid = EXAMPLE_CUSTOMER
    return [
        Case(
            "batch-missing-customers", "/predict_batch", b"{}", "missing", "customers"
        ),
        Case(
            "batch-empty-list",
            "/predict_batch",
            dumps({"customers": []}),
            "too_short",
            "customers",
        ),
        Case(
            "batch-customers-not-list",
            "/predict_batch",
            dumps({"customers": valid}),
            "list_type",
            "customers",
        ),
        Case("batch-bare-list", "/predict_batch", dumps([valid]), "model_type"),
        Case(
            "batch-extra-field",
            "/predict_batch",
            dumps({"customers": [valid], "priority": 1}),
            "extra_forbidden",
            "priority",
        ),
        # One bad customer among good ones: the whole batch is refused, none
        # of the good ones is recorded.
        Case(
            "batch-one-bad-customer",
            "/predict_batch",
            dumps({"customers": [valid, customer(tenure=-5), valid]}),
            "greater_than_equal",
            "tenure",
        ),
        Case(
            "batch-one-nan",
            "/predict_batch",
            dumps({"customers": [valid, customer(MonthlyCharges=float("nan"))]}),
            "finite_number",
            "MonthlyCharges",
        ),
        Case(
            "batch-over-limit",
            "/predict_batch",
            dumps({"customers": [valid] * (MAX_BATCH + 1)}),
            str(MAX_BATCH),
            "customers",
            statuses=(400, 413),
        ),
        Case(
            "batch-truncated",
            "/predict_batch",
            dumps({"customers": [valid] * 3})[:-40],
            "json_invalid",
        ),
        Case(
            "batch-deeply-nested",
            "/predict_batch",
            b'{"customers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "json_invalid|recursion",
        ),
        Case(
            "batch-pickle",
            "/predict_batch",
            pickle.dumps({"customers": [valid]}),
            "pickle",
            content_type="application/vnd.bentoml+pickle",
            statuses=(415,),
        ),
        Case(
            "batch-multipart-without-boundary",
            "/predict_batch",
            dumps({"customers": [valid]}),
            "media.type|content.type|json",
            "Content-Type",
            content_type="multipart/form-data",
            statuses=(415,),
        ),
    ]


def _labelled(ctx: Context, **changes: Any) -> bytes:
    return dumps({"request_id": ctx.labelled_request_id, "churned": True, **changes})


def _feedback_cases() -> list[Case]:
    return [
        Case(
            "feedback-neither-key",
            "/feedback",
            dumps({"churned": True}),
            "request_id or customerID",
        ),
        Case(
            "feedback-both-keys",
            "/feedback",
            lambda ctx: dumps(
                {
                    "request_id": ctx.labelled_request_id,
                    "customerID": ctx.labelled_customer_id,
                    "churned": True,
                }
            ),
            "request_id or customerID",
        ),
        Case(
            "feedback-missing-churned",
            "/feedback",
            lambda ctx: dumps({"request_id": ctx.labelled_request_id}),
            "missing",
            "churned",
        ),
        Case(
            "feedback-unknown-request",
            "/feedback",
            dumps({"request_id": "no-such-request", "churned": True}),
            "unknown_id",
            "request_id",
            statuses=(404,),
        ),
        Case(
            "feedback-unknown-customer",
            "/feedback",
            dumps({"customerID": "no-such-customer", "churned": False}),
            "unknown_id",
            "customerID",
            statuses=(404,),
        ),
        Case(
            "feedback-conflicting-label",
            "/feedback",
            lambda ctx: _labelled(ctx, churned=False),
            "conflicting_label",
            "request_id",
            statuses=(409,),
        ),
        Case(
            "feedback-extra-field",
            "/feedback",
            lambda ctx: _labelled(ctx, reason="moved"),
            "extra_forbidden",
            "reason",
        ),
        Case(
            "feedback-request-id-10kB",
            "/feedback",
            dumps({"request_id": "r" * 10_240, "churned": True}),
            "string_too_long",
            "request_id",
        ),
        Case(
            "feedback-customer-id-10kB",
            "/feedback",
            dumps({"customerID": "c" * 10_240, "churned": True}),
            "string_too_long",
            "customerID",
        ),
        Case(
            "feedback-empty-request-id",
            "/feedback",
            dumps({"request_id": "", "churned": True}),
            "string_too_short",
            "request_id",
        ),
        Case(
            "feedback-negative-observed-at",
            "/feedback",
            lambda ctx: _labelled(ctx, observed_at=-1),
            "greater_than_equal",
            "observed_at",
        ),
        Case(
            "feedback-nan-observed-at",
            "/feedback",
            lambda ctx: _labelled(ctx, observed_at=float("nan")),
            "finite_number|greater_than_equal",
            "observed_at",
        ),
        Case(
            "feedback-inf-observed-at",
            "/feedback",
            lambda ctx: _labelled(ctx, observed_at=float("inf")),
            "finite_number",
            "observed_at",
        ),
        Case(
            "feedback-string-observed-at",
            "/feedback",
            lambda ctx: _labelled(ctx, observed_at="1700000000"),
            "float_type",
            "observed_at",
        ),
        Case(
            "feedback-string-churned",
            "/feedback",
            lambda ctx: _labelled(ctx, churned="yes"),
            "bool_type",
            "churned",
        ),
        Case(
            "feedback-int-churned",
            "/feedback",
            lambda ctx: _labelled(ctx, churned=1),
            "bool_type",
            "churned",
        ),
        Case("feedback-empty-body", "/feedback", b"", "missing|request_id"),
        Case("feedback-not-json", "/feedback", b"churned", "json_invalid"),
        Case(
            "feedback-pickle",
            "/feedback",
            pickle.dumps({"request_id": "x", "churned": True}),
            "pickle",
            content_type="application/vnd.bentoml+pickle",
            statuses=(415,),
        ),
        Case(
            "feedback-multipart-without-boundary",
            "/feedback",
            dumps({"request_id": "x", "churned": True}),
            "media.type|content.type|json",
            "Content-Type",
            content_type="multipart/form-data",
            statuses=(415,),
        ),
        Case(
            "feedback-batch-empty",
            "/feedback_batch",
            dumps({"labels": []}),
            "too_short",
            "labels",
        ),
        Case(
            "feedback-batch-over-limit",
            "/feedback_batch",
            dumps({"labels": [{"request_id": "x", "churned": True}] * (MAX_BATCH + 1)}),
            "too_long",
            "labels",
        ),
        Case(
            "feedback-batch-unknown",
            "/feedback_batch",
            dumps({"labels": [{"request_id": "no-such-request", "churned": True}]}),
            "unknown_id",
            "labels[0].request_id",
            statuses=(404,),
        ),
        Case(
            "feedback-batch-conflict",
            "/feedback_batch",
            lambda ctx: dumps(
                {"labels": [{"request_id": ctx.labelled_request_id, "churned": False}]}
            ),
            "conflicting_label",
            "labels[0].request_id",
            statuses=(409,),
        ),
        Case(
            "feedback-batch-bad-item",
            "/feedback_batch",
            dumps({"labels": [{"churned": True}]}),
            "request_id or customerID",
            "labels",
        ),
        Case(
            "feedback-batch-multipart-without-boundary",
            "/feedback_batch",
            dumps({"labels": [{"request_id": "x", "churned": True}]}),
            "media.type|content.type|json",
            "Content-Type",
            content_type="multipart/form-data",
            statuses=(415,),
        ),
    ]


CASES = _predict_cases() + _batch_cases() + _feedback_cases()


def _params() -> list[Any]:
    return [pytest.param(case, id=case.id) for case in CASES]


@pytest.fixture(scope="module")
def client(bento_server: BentoServer) -> httpx.Client:
    with httpx.Client(base_url=bento_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def context(client: httpx.Client) -> Context:
    """A prediction for a known customer, labelled churned=True once."""
    customer_id = "catalogue-labelled-customer"
    answer = client.post("/predict", json=customer(customerID=customer_id))
    assert answer.status_code == 200, answer.text
    request_id = answer.json()["request_id"]
    label = client.post("/feedback", json={"request_id": request_id, "churned": True})
    assert label.status_code == 200, label.text
    return Context(request_id, customer_id)


def test_catalogue_has_every_endpoint() -> None:
    paths = {case.path for case in CASES}
    assert paths == {"/predict", "/predict_batch", "/feedback", "/feedback_batch"}


@pytest.mark.parametrize("case", _params())
def test_bad_request_is_refused_cleanly(
    case: Case, client: httpx.Client, context: Context, bento_server: BentoServer
) -> None:
    body = case.body(context) if callable(case.body) else case.body
    headers = {}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    before = ledger_counts(bento_server.ledger_path)

    response = client.post(case.path, content=body, headers=headers)

    after = ledger_counts(bento_server.ledger_path)
    text = response.text
    assert "Traceback" not in text and 'File "' not in text, text[:2000]
    assert 400 <= response.status_code < 500, (response.status_code, text[:2000])
    if case.statuses:
        assert response.status_code in case.statuses, (response.status_code, text)
    parsed = response.json()  # the error is JSON, not a bare string or HTML
    rendered = json.dumps(parsed)
    assert re.search(case.rule, rendered, re.IGNORECASE), rendered[:2000]
    if case.field is not None:
        assert case.field in rendered, rendered[:2000]
    assert after == before, "a refused request changed the ledger"


def test_server_is_healthy_after_the_catalogue(
    client: httpx.Client, bento_server: BentoServer
) -> None:
    assert client.get("/readyz").status_code == 200
    before = ledger_counts(bento_server.ledger_path)
    answer = client.post("/predict", json=customer(customerID="after-catalogue"))
    assert answer.status_code == 200, answer.text
    assert 0.0 <= answer.json()["churn_probability"] <= 1.0
    after = ledger_counts(bento_server.ledger_path)
    assert after.exposures == before.exposures + 1
