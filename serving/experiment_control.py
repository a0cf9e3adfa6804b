"""Experiment control: the admin routes' one entry point.

Authorise first, then parse the body, then change the experiment. The body
is parsed here rather than by FastAPI so an unauthenticated caller learns
nothing about the body format: the bearer token is checked before anything
else. Every outcome is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from ab_router import admin
from ab_router.errors import AbRouterError, LedgerUnavailableError
from ab_router.ledger import Ledger
from ab_router.records import Mode
from ab_router.state import ExperimentState
from serving.admin_auth import BearerAuth
from serving.http_errors import BodyTooLargeError, InvalidBodyError
from serving.metrics import ServiceMetrics
from serving.state_cache import StateCache

MAX_ADMIN_BODY_BYTES = 64 * 1024
# Optimistic changes: another worker's change in between means a retry.
CHANGE_ATTEMPTS = 5


class UnknownActionError(AbRouterError):
    status = 404
    code = "not_found"


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


@dataclass(frozen=True)
class Action:
    body: type[BaseModel]
    change: Callable[[ExperimentState, Any], admin.Change]


ACTIONS: dict[str, Action] = {
    "weights": Action(WeightsRequest, lambda s, b: admin.set_weights(s, b.weights)),
    "mode": Action(ModeRequest, lambda s, b: admin.set_mode(s, Mode(b.mode))),
    "promote": Action(ActionRequest, lambda s, _: admin.promote(s)),
    "rollback": Action(ActionRequest, lambda s, _: admin.rollback(s)),
    "reset": Action(ActionRequest, lambda s, _: admin.reset(s)),
}


def parse_body(raw: bytes, model: type[BaseModel]) -> BaseModel:
    if len(raw) > MAX_ADMIN_BODY_BYTES:
        raise BodyTooLargeError(
            f"admin request body exceeds {MAX_ADMIN_BODY_BYTES} bytes", field="body"
        )
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        raise InvalidBodyError(exc) from None


class ExperimentControl:
    def __init__(
        self,
        ledger: Ledger,
        state: StateCache,
        auth: BearerAuth,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.ledger = ledger
        self.state = state
        self.auth = auth
        self.metrics = metrics

    async def handle_request(self, action: str, request: Request) -> dict[str, Any]:
        """``handle`` for an HTTP request: its Authorization header and body."""
        authorization = request.headers.get("authorization")
        body = await request.body()
        return await self.handle(action, authorization, body)

    async def handle(
        self, action: str, authorization: str | None, raw_body: bytes
    ) -> dict[str, Any]:
        """Authorise, parse, apply one admin action; the new state on success."""
        chosen = ACTIONS.get(action)
        if chosen is None:
            known = ", ".join(ACTIONS)
            raise UnknownActionError(
                f"no admin action {action!r}; known: {known}", field="path"
            )
        try:
            actor = self.auth.authorize(authorization)
            body = parse_body(raw_body, chosen.body)
            result = await asyncio.to_thread(
                self.change,
                lambda state: chosen.change(state, body),
                reason=getattr(body, "reason", ""),
                actor=actor,
            )
        except AbRouterError as exc:
            self._count("client_error" if exc.status < 500 else "server_error")
            raise
        self._count("success")
        return result

    def change(
        self,
        make_change: Callable[[ExperimentState], admin.Change],
        *,
        reason: str,
        actor: str,
    ) -> dict[str, Any]:
        """Apply a change computed from the freshest state; the new state."""
        for _ in range(CHANGE_ATTEMPTS):
            state = self.state.reload()
            change = make_change(state)
            if self.ledger.change_state(
                state, change, reason=reason or change.kind, actor=actor
            ):
                return self.state.reload().to_dict()
        raise LedgerUnavailableError(
            "the experiment kept changing under this request; retry"
        )

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.requests.labels("admin", outcome).inc()
