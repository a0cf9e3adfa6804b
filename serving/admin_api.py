"""Admin endpoints: authorise first, then validate, then change the experiment.

The body is parsed here rather than by FastAPI so an unauthenticated caller
learns nothing about the body format: the bearer token is checked before
anything else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from ab_router import admin
from ab_router.errors import AbRouterError
from ab_router.records import Mode
from ab_router.state import ExperimentState
from serving.errors import error_response

MAX_ADMIN_BODY_BYTES = 64 * 1024


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float]
    reason: str = Field(default="", max_length=500)


class ModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["split", "shadow", "canary"]
    reason: str = Field(default="", max_length=500)


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=500)


def validation_error_response(exc: ValidationError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "code": "invalid_body",
                "message": f"{exc.error_count()} invalid field(s)",
                "fields": [
                    {"field": ".".join(str(p) for p in e["loc"]), "rule": e["msg"]}
                    for e in exc.errors()
                ],
            }
        },
        status_code=422,
    )


async def read_body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    if len(raw) > MAX_ADMIN_BODY_BYTES:
        raise AbRouterError("admin request body is too large", field="body")
    if not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        raise
    except (ValueError, json.JSONDecodeError) as exc:  # pragma: no cover - pydantic
        raise AbRouterError(f"body is not valid JSON: {exc}", field="body") from None


ChangeFor = Callable[[ExperimentState, Any], admin.Change]


async def admin_call(
    request: Request,
    authorize: Callable[[str | None], str],
    model: type[BaseModel],
    apply: Callable[[BaseModel, str], Awaitable[dict[str, Any]]],
    count: Callable[[str], None],
) -> JSONResponse:
    """Authorise, parse, apply; every outcome is a JSON response and counted."""
    try:
        actor = authorize(request.headers.get("authorization"))
        body = await read_body(request, model)
        result = await apply(body, actor)
    except ValidationError as exc:
        count("client_error")
        return validation_error_response(exc)
    except AbRouterError as exc:
        count("client_error" if exc.status < 500 else "server_error")
        return error_response(exc)
    count("success")
    return JSONResponse(result)


def change_for_weights(state: ExperimentState, body: WeightsRequest) -> admin.Change:
    return admin.set_weights(state, body.weights)


def change_for_mode(state: ExperimentState, body: ModeRequest) -> admin.Change:
    return admin.set_mode(state, Mode(body.mode))
