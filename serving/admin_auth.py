"""Bearer-token authorisation of the admin routes."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from ab_router.errors import AdminDisabledError, UnauthorizedError


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` in constant time.

    With no token configured every caller is refused: admin routes are off
    unless an operator turned them on.
    """

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token

    def authorize(self, authorization: str | None) -> str:
        """The actor name of an authorised caller; raises otherwise."""
        if self._token is None:
            raise AdminDisabledError(
                "admin endpoints are disabled: set CHURN_AB_ADMIN_TOKEN to enable them",
                field="Authorization",
            )
        scheme, _, presented = (authorization or "").partition(" ")
        expected = self._token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected
        ):
            raise UnauthorizedError(
                "a valid 'Authorization: Bearer <token>' header is required",
                field="Authorization",
            )
        return "admin"
