"""The one place an error becomes an HTTP answer, for every route.

A typed error (``AbRouterError``) knows its status and the field it is about
and is answered as it is. Anything else is a bug: logged here with its
traceback, answered with a generic 500 that carries no detail.

BentoML answers an exception raised inside a ``@bentoml.api`` itself (its
``api_endpoint_wrapper`` turns it into its own body before any ASGI
middleware sees it), so the one handler is installed in two places: as the
exception handler of the mounted FastAPI app, and around each BentoML API by
``json_errors``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar, cast

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ab_router.errors import AbRouterError, PayloadTooLargeError

logger = logging.getLogger("churn_ab.errors")

INTERNAL_ERROR = {
    "code": "internal_error",
    "message": "an unexpected error occurred; it is logged on the server",
}

P = ParamSpec("P")
R = TypeVar("R")


class InvalidBodyError(AbRouterError):
    """A JSON body failed its schema; names every invalid field."""

    status = 422
    code = "invalid_body"

    def __init__(self, exc: ValidationError | RequestValidationError) -> None:
        errors = exc.errors()
        super().__init__(f"{len(errors)} invalid field(s)")
        self.fields = [
            {"field": ".".join(str(p) for p in e["loc"]), "rule": e["msg"]}
            for e in errors
        ]

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "fields": self.fields}


class InvalidQueryError(AbRouterError):
    """A query parameter has a value the route does not understand."""

    status = 422
    code = "invalid_query"


class BodyTooLargeError(PayloadTooLargeError):
    """A request body is larger than the route accepts."""

    code = "body_too_large"


class UnsupportedMediaTypeError(AbRouterError):
    status = 415
    code = "unsupported_media_type"


class ApiKeyError(AbRouterError):
    """No API key, or one the key file does not hold."""

    status = 401
    code = "unauthorized"


class RateLimitedError(AbRouterError):
    """An API key sent more than its rate allows; try again after a while."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, field: str) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "retry_after_s": self.retry_after_s}


class DuplicateKeyError(AbRouterError):
    """A JSON object names a key twice (which one would win is ambiguous)."""

    code = "duplicate_key"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


def render_error(exc: BaseException) -> ErrorAnswer:
    """Status, JSON body and headers for any exception; logs the unexpected."""
    if isinstance(exc, AbRouterError):
        status, error = exc.status, exc.to_dict()
    else:
        logger.error("unexpected error", exc_info=exc)
        status, error = 500, dict(INTERNAL_ERROR)
    headers = {"content-type": "application/json"}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    if isinstance(exc, RateLimitedError):
        headers["retry-after"] = str(exc.retry_after_s)
    return ErrorAnswer(status, json.dumps({"error": error}).encode(), headers)


def error_response(exc: BaseException) -> Response:
    answer = render_error(exc)
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


async def handle_error(request: Request, exc: Exception) -> Response:
    """The exception handler of the mounted FastAPI app."""
    if isinstance(exc, RequestValidationError):  # a bad query parameter
        return error_response(InvalidBodyError(exc))
    return error_response(exc)


def install_error_handler(app: FastAPI) -> None:
    """Answer every error of ``app``'s routes through ``handle_error``."""
    for kind in (AbRouterError, RequestValidationError, Exception):
        app.add_exception_handler(kind, handle_error)


def json_errors(
    api: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R]]:
    """Answer whatever a BentoML API raises through ``render_error``.

    The error answer is a Response, not the API's declared model; BentoML
    sends a Response as it is, and the declared model still shapes the
    OpenAPI page of the successful answer.
    """

    @functools.wraps(api)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await api(*args, **kwargs)
        except Exception as exc:  # rendered; logged when a bug
            response = error_response(exc)
            context = kwargs.get("ctx")
            if context is not None:
                # BentoML gives an API that takes a Context the Context's
                # status, overriding the returned Response's: carry it over.
                context.response.status_code = response.status_code  # type: ignore[attr-defined]
            return cast(R, response)

    return answer
