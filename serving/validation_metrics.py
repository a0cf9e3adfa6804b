"""Count requests BentoML rejects before our code runs.

BentoML validates a body against the API's input model and answers 400 itself,
so ``/predict`` never sees it. This ASGI middleware counts those answers. Our
own handlers never answer 400 (they use 404, 409, 413, 401/403, 503), so a 400
on an API route is always a validation rejection.
"""

from __future__ import annotations

from typing import Any

from serving.metrics import ServiceMetrics

ROUTE_ENDPOINTS = {
    "/predict": "predict",
    "/predict_batch": "predict_batch",
    "/feedback": "feedback",
    "/feedback_batch": "feedback",
}
VALIDATION_STATUSES = frozenset({400, 415, 422})


class ValidationMetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = (
            ROUTE_ENDPOINTS.get(scope.get("path", ""))
            if scope["type"] == "http"
            else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return

        async def observe(message: Any) -> None:
            if (
                message["type"] == "http.response.start"
                and message["status"] in VALIDATION_STATUSES
            ):
                metrics = ServiceMetrics.create()
                metrics.errors.labels("validation").inc()
                metrics.requests.labels(endpoint, "client_error").inc()
            await send(message)

        await self.app(scope, receive, send=observe)
