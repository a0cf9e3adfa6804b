"""The floor: a bare Starlette endpoint that parses the same JSON and answers.

No validation, no model, no routing. Whatever the product costs above this is
its own overhead, measured on the same machine in the same run.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def predict(request: Request) -> Response:
    customer = json.loads(await request.body())
    body = {"model_version": "bare", "fields": len(customer), "churn_probability": 0.5}
    return Response(json.dumps(body), media_type="application/json")


async def predict_batch(request: Request) -> Response:
    customers = json.loads(await request.body())["customers"]
    body = {"count": len(customers)}
    return Response(json.dumps(body), media_type="application/json")


async def health(request: Request) -> Response:
    return Response('{"status":"healthy"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/predict", predict, methods=["POST"]),
        Route("/predict_batch", predict_batch, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)
