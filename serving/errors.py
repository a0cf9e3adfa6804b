"""Turn typed errors into JSON responses; never leak a traceback."""

from __future__ import annotations

from starlette.responses import JSONResponse

from ab_router.errors import AbRouterError


def error_response(exc: AbRouterError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(
        {"error": exc.to_dict()}, status_code=exc.status, headers=headers
    )
