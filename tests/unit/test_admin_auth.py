"""Admin endpoints need the bearer token; without one configured they refuse."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ab_router.errors import AdminDisabledError, UnauthorizedError
from serving.admin_auth import BearerAuth


def test_no_token_configured_refuses_every_caller() -> None:
    auth = BearerAuth(None)
    for header in (None, "Bearer ", "Bearer anything"):
        with pytest.raises(AdminDisabledError) as info:
            auth.authorize(header)
        assert info.value.status == 403
        assert "CHURN_AB_ADMIN_TOKEN" in info.value.message


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer wrong", "Basic s3cret", "bearer s3cret!"]
)
def test_wrong_or_missing_token_is_401(header: str | None) -> None:
    with pytest.raises(UnauthorizedError) as info:
        BearerAuth(SecretStr("s3cret")).authorize(header)
    assert info.value.status == 401 and info.value.field == "Authorization"


def test_right_token_is_accepted() -> None:
    auth = BearerAuth(SecretStr("s3cret"))
    assert auth.authorize("Bearer s3cret") == "admin"
    assert auth.authorize("bearer s3cret") == "admin"  # the scheme is case-blind
