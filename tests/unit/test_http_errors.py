"""The one error renderer: typed errors as they are, anything else a bare 500."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from ab_router.errors import (
    ConfigError,
    LedgerUnavailableError,
    UnauthorizedError,
    UnknownRequestError,
)
from serving.http_errors import (
    BodyTooLargeError,
    InvalidBodyError,
    json_errors,
    render_error,
)


def _error(body: bytes) -> dict[str, object]:
    decoded = json.loads(body)
    assert set(decoded) == {"error"}
    error = decoded["error"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ConfigError("weights must sum to 1", field="weights"), 422, "invalid_config"),
        (UnknownRequestError("no such id", field="request_id"), 404, "unknown_id"),
        (BodyTooLargeError("too big", field="body"), 413, "body_too_large"),
        (LedgerUnavailableError("down", field="ledger"), 503, "ledger_unavailable"),
    ],
)
def test_a_typed_error_keeps_its_status_code_and_field(
    exc: ConfigError, status: int, code: str
) -> None:
    answer = render_error(exc)
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert _error(answer.body) == {
        "code": code,
        "message": exc.message,
        "field": exc.field,
    }


def test_unauthorised_answers_name_the_scheme() -> None:
    answer = render_error(UnauthorizedError("token", field="Authorization"))
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "www-authenticate" not in render_error(ConfigError("x")).headers


def test_an_invalid_body_names_every_field() -> None:
    class Body(BaseModel):
        weight: float
        reason: str

    with pytest.raises(ValidationError) as info:
        Body.model_validate({"weight": "heavy"})
    error = _error(render_error(InvalidBodyError(info.value)).body)
    assert error["code"] == "invalid_body"
    fields = error["fields"]
    assert isinstance(fields, list)
    assert [f["field"] for f in fields] == ["weight", "reason"]


def test_an_unexpected_error_is_a_logged_500_without_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "password=hunter2 at /srv/app.py line 7"
    with caplog.at_level(logging.ERROR, logger="churn_ab.errors"):
        answer = render_error(RuntimeError(secret))
    assert answer.status == 500
    assert secret.encode() not in answer.body
    assert b"Traceback" not in answer.body
    assert _error(answer.body)["code"] == "internal_error"
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[1] is not None
    assert str(record.exc_info[1]) == secret


def test_json_errors_answers_what_an_api_raises_and_passes_results() -> None:
    @json_errors
    async def api(fail: BaseException | None) -> str:
        if fail is not None:
            raise fail
        return "ok"

    assert asyncio.run(api(None)) == "ok"
    typed = asyncio.run(api(UnknownRequestError("gone", field="request_id")))
    assert getattr(typed, "status_code", None) == 404
    crashed = asyncio.run(api(KeyError("boom")))
    assert getattr(crashed, "status_code", None) == 500


def test_a_bad_query_parameter_is_422_naming_it() -> None:
    from fastapi.exceptions import RequestValidationError

    from serving.http_errors import handle_error

    exc = RequestValidationError(
        [{"loc": ("query", "epoch"), "msg": "Input should be a valid integer"}]
    )
    response = asyncio.run(handle_error(None, exc))  # type: ignore[arg-type]
    assert response.status_code == 422
    error = _error(bytes(response.body))
    assert error["fields"] == [
        {"field": "query.epoch", "rule": "Input should be a valid integer"}
    ]


def test_every_route_of_an_app_answers_through_the_one_handler() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from serving.http_errors import install_error_handler

    app = FastAPI()
    install_error_handler(app)

    @app.get("/typed")
    def typed() -> None:
        raise ConfigError("weights must sum to 1", field="weights")

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret detail")

    @app.get("/query")
    def query(epoch: int) -> int:
        return epoch

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/typed").status_code == 422
    assert client.get("/typed").json()["error"]["field"] == "weights"
    crashed = client.get("/crash")
    assert crashed.status_code == 500 and "secret" not in crashed.text
    assert crashed.json()["error"]["code"] == "internal_error"
    bad_query = client.get("/query", params={"epoch": "soon"})
    assert bad_query.status_code == 422
    assert bad_query.json()["error"]["fields"][0]["field"] == "query.epoch"
