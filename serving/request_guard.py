"""Guard the JSON API routes before BentoML parses a body, and count rejections.

With API keys configured it first asks ``AccessControl`` who is calling (401)
and, once the body is parsed, charges the key with the request's rows (429):
every route in ``ROUTE_ENDPOINTS`` is covered, so a new route is protected by
adding it there.

BentoML accepts forms, plain text and multipart on every API (a multipart body
without a boundary even becomes a 500), has no body size limit, and lets a
duplicated JSON key silently win. This ASGI middleware answers those with a
clear 4xx naming the rule, and counts every request BentoML itself rejects
(its validation answers 400 before our handlers run; our handlers never
answer 400, so a 400 on these routes is always a validation rejection).
"""

from __future__ import annotations

import json
from typing import Any

from ab_router.errors import AbRouterError
from serving.access import AccessControl
from serving.http_errors import (
    BodyTooLargeError,
    DuplicateKeyError,
    ErrorAnswer,
    UnsupportedMediaTypeError,
    render_error,
)
from serving.metrics import ServiceMetrics

ROUTE_ENDPOINTS = {
    "/predict": "predict",
    "/predict_batch": "predict_batch",
    "/feedback": "feedback",
    "/feedback_batch": "feedback",
    "/explain": "explain",
}
# The list whose length a request costs against its key's rate (else 1).
ROUTE_ROWS = {"/predict_batch": "customers", "/feedback_batch": "labels"}
VALIDATION_STATUSES = frozenset({400, 413, 415, 422})
JSON_TYPES = frozenset({"application/json"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKeyError(f"JSON key {key!r} appears twice", field=key)
        seen[key] = value
    return seen


class RequestGuardMiddleware:
    def __init__(
        self, app: Any, max_body_bytes: int, access: AccessControl | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access = access

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = _guarded_endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        checked = await self._admit(scope, receive, endpoint)
        if isinstance(checked, ErrorAnswer):
            await _respond(send, checked)
            return
        await self.app(scope, _replay(checked, receive), self._observe(send, endpoint))

    async def _admit(
        self, scope: Any, receive: Any, endpoint: str
    ) -> bytes | ErrorAnswer:
        """The request's body, or the (counted) answer that refuses it."""
        access = self.access
        key = None
        if access is not None:
            try:
                key = access.authenticate(scope["headers"])
            except AbRouterError as refused:
                self._count_refusal(endpoint)
                return render_error(refused)
        try:
            body, parsed = await self._checked_body(scope, receive)
        except AbRouterError as rejected:
            self._count(endpoint)
            return render_error(rejected)
        if key is not None and access is not None:
            field = ROUTE_ROWS.get(scope["path"])
            try:
                access.admit(key, _rows(parsed, field), field or "Authorization")
            except AbRouterError as refused:
                self._count_refusal(endpoint)
                return render_error(refused)
        return body

    def _observe(self, send: Any, endpoint: str) -> Any:
        """``send``, counting the rejections BentoML's own validation answers."""

        async def observe(message: Any) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] in VALIDATION_STATUSES
            ):
                self._count(endpoint)
            await send(message)

        return observe

    async def _checked_body(self, scope: Any, receive: Any) -> tuple[bytes, Any]:
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        content_type = headers.get("content-type")
        if content_type is not None:
            media_type = content_type.decode("latin-1").split(";")[0].strip().lower()
            if media_type not in JSON_TYPES:
                raise UnsupportedMediaTypeError(
                    f"Content-Type must be application/json, got {media_type!r}",
                    field="Content-Type",
                )
        declared = headers.get("content-length")
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > self.max_body_bytes
        ):
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Repeated keys are caught while parsing; invalid JSON is left to
        # BentoML's validation, which names the problem.
        try:
            parsed = json.loads(body, object_pairs_hook=_no_duplicates)
        except DuplicateKeyError:
            raise
        except (ValueError, RecursionError):
            parsed = None
        return body, parsed

    def _too_large(self) -> BodyTooLargeError:
        return BodyTooLargeError(
            f"request body exceeds {self.max_body_bytes} bytes "
            "(CHURN_AB_MAX_BODY_BYTES)",
            field="body",
        )

    @staticmethod
    def _count_refusal(endpoint: str) -> None:
        ServiceMetrics.create().requests.labels(endpoint, "client_error").inc()

    @staticmethod
    def _count(endpoint: str) -> None:
        metrics = ServiceMetrics.create()
        metrics.errors.labels("validation").inc()
        metrics.requests.labels(endpoint, "client_error").inc()


def _guarded_endpoint(scope: Any) -> str | None:
    """The endpoint a guarded POST is counted under; None: pass it through."""
    if scope["type"] == "http" and scope.get("method") == "POST":
        return ROUTE_ENDPOINTS.get(scope.get("path", ""))
    return None


def _replay(body: bytes, receive: Any) -> Any:
    """``receive`` that hands the already-read body to the app once."""
    delivered = False

    async def replay() -> Any:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _rows(parsed: Any, field: str | None) -> int:
    """Rows a request costs: its list's length (a malformed body costs 1 and
    is then refused by validation)."""
    if field is None or not isinstance(parsed, dict):
        return 1
    items = parsed.get(field)
    return max(len(items), 1) if isinstance(items, list) else 1


async def _respond(send: Any, answer: ErrorAnswer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                *((k.encode(), v.encode()) for k, v in answer.headers.items()),
                (b"content-length", str(len(answer.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
