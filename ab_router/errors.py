"""Errors the experiment engine raises, each knowing its HTTP status.

The service turns them into JSON bodies as they are; anything else is an
unexpected error: logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations


class AbRouterError(Exception):
    """Base error: ``status`` is the HTTP status, ``field`` what it is about."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class ConfigError(AbRouterError):
    """An experiment configuration is invalid; names the setting."""

    status = 422
    code = "invalid_config"


class UnknownRequestError(AbRouterError):
    """Feedback names a request id or customer the ledger has never seen."""

    status = 404
    code = "unknown_id"


class ConflictingLabelError(AbRouterError):
    """Feedback contradicts a label already recorded for the same exposure."""

    status = 409
    code = "conflicting_label"


class ArchivedRequestError(AbRouterError):
    """Feedback names a request whose epoch was archived (rows moved out of
    the ledger by ``python -m ab_router archive``): it can no longer change."""

    status = 410
    code = "archived"


class UnauthorizedError(AbRouterError):
    """The admin bearer token is missing or wrong."""

    status = 401
    code = "unauthorized"


class AdminDisabledError(AbRouterError):
    """Admin endpoints refuse to work when no token is configured."""

    status = 403
    code = "admin_disabled"


class LedgerUnavailableError(AbRouterError):
    """The ledger could not commit; the request is failed rather than lost."""

    status = 503
    code = "ledger_unavailable"


class ModelsUnavailableError(AbRouterError):
    """Neither variant could answer."""

    status = 503
    code = "models_unavailable"


class PayloadTooLargeError(AbRouterError):
    """A batch carries more items than the configured bound."""

    status = 413
    code = "too_many_items"
