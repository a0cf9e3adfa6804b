"""Admin actions: one entry point, token first, then the body, then the change."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from ab_router.errors import UnauthorizedError
from serving.admin_auth import BearerAuth
from serving.experiment_control import (
    MAX_ADMIN_BODY_BYTES,
    ExperimentControl,
    UnknownActionError,
    WeightsRequest,
    parse_body,
)
from serving.http_errors import BodyTooLargeError, InvalidBodyError


class _NoLedger:
    """Fails the test if a refused request reaches the ledger."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the ledger was used: {name}")


def _control() -> ExperimentControl:
    auth = BearerAuth(SecretStr("s3cret"))
    return ExperimentControl(_NoLedger(), _NoLedger(), auth)  # type: ignore[arg-type]


def test_the_token_is_checked_before_the_body() -> None:
    with pytest.raises(UnauthorizedError):
        asyncio.run(_control().handle("weights", "Bearer wrong", b"not json"))


def test_an_unknown_action_is_404() -> None:
    with pytest.raises(UnknownActionError) as info:
        asyncio.run(_control().handle("explode", "Bearer s3cret", b"{}"))
    assert info.value.status == 404


def test_a_body_over_the_bound_is_413_and_one_at_it_is_parsed() -> None:
    with pytest.raises(BodyTooLargeError) as info:
        parse_body(b" " * (MAX_ADMIN_BODY_BYTES + 1), WeightsRequest)
    assert info.value.status == 413 and info.value.field == "body"
    at_limit = json.dumps({"weights": {"v1": 1.0}}).encode()
    at_limit += b" " * (MAX_ADMIN_BODY_BYTES - len(at_limit))
    assert isinstance(parse_body(at_limit, WeightsRequest), WeightsRequest)


def test_a_bad_body_is_422_naming_the_field() -> None:
    with pytest.raises(InvalidBodyError) as info:
        parse_body(b'{"weights": {"v1": "half"}}', WeightsRequest)
    assert info.value.status == 422
    assert [f["field"] for f in info.value.fields] == ["weights.v1"]
