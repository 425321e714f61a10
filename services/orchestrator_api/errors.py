"""The one error body every API answer uses: `{"error": <status phrase>, "detail": ...}`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import redis
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.common.logging import get_logger
from services.common.schemas import ErrorBody

log = get_logger(__name__)
RETRY_AFTER_S = "1"
# What a route with parameters documents for them: our body, not FastAPI's default HTTPValidationError.
BAD_PARAMETER: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "A bad parameter or body; `detail` names each as `{field, message}`"}
}


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    error = HTTPStatus(status).phrase.lower().replace(" ", "_")
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def http_error(exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, exc.detail, exc.headers)  # type: ignore[arg-type]


def redis_unavailable(exc: redis.RedisError) -> JSONResponse:
    log.error("api.redis_unavailable", error=str(exc))
    return error_response(503, "Redis is unavailable; nothing was stored", {"Retry-After": RETRY_AFTER_S})
