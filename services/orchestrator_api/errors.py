"""API errors, and the one mapping of every failure to an answer `{"error": <status phrase>, "detail": ...}`
(`ErrorBody`), used by the FastAPI app's handlers and by the ingest fast path alike (`response`):

ApiError
├── BadJson                 -> 400: the body does not parse as JSON
├── Unauthorized            -> 401
│   ├── LoginRequired       -> + WWW-Authenticate: ingest needs HTTP Basic (security.py)
│   └── ApiKeyRequired      -> reads need x-api-key when API_KEY is set (security.py)
├── TokenRequired           -> 403: /internal/* needs x-internal-token (security.py)
├── NotFound                -> 404: an unknown symbol or trade
├── TooLarge                -> 413: a body or batch over its limit
├── WrongContentType        -> 415: ingest takes application/json only
├── Invalid                 -> 422, detail: [{field, message}] or, per item, [{index, errors}]
├── Saturated               -> 429 + Retry-After: this process holds INGEST_MAX_PENDING items (commit.py)
└── Unavailable             -> 503 + Retry-After: nothing was stored
    ├── Behind              -> a bound on work in Redis is passed (backlog, queued items or jobs; commit.py)
    ├── ShuttingDown        -> the process is stopping and takes no new items (commit.py)
    ├── PostgresNeeded      -> a read that needs Postgres while it is away (read/routes.py)
    └── NoSnapshot          -> no RTTM snapshot yet (rttm/routes.py)

Mapped here too, from outside the tree: redis.RedisError -> 503 (Redis unavailable), sqlalchemy's
OperationalError / InterfaceError -> 503 (Postgres unavailable), FastAPI's RequestValidationError -> 422 with
each field named, and starlette's HTTPException (routing's 404 and 405) -> its status.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import redis
import sqlalchemy.exc
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.common.logging import get_logger
from services.common.schemas import ErrorBody
from services.orchestrator_api.defaults import RETRY_AFTER_S

log = get_logger(__name__)
# What a route with parameters documents for them: our body, not FastAPI's default HTTPValidationError.
BAD_PARAMETER: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "A bad parameter or body; `detail` names each as `{field, message}`"}
}
POSTGRES_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


class ApiError(Exception):
    status = 500

    def __init__(self, detail: object, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadJson(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class LoginRequired(Unauthorized):
    def __init__(self, detail: object, realm: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": realm})


class ApiKeyRequired(Unauthorized):
    pass


class TokenRequired(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class TooLarge(ApiError):
    status = 413


class WrongContentType(ApiError):
    status = 415


class Invalid(ApiError):
    status = 422

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        return cls([{"field": field, "message": message}])


class Saturated(ApiError):
    status = 429

    def __init__(self, detail: object, retry_after_s: float | str = RETRY_AFTER_S) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after_s)})


class Unavailable(ApiError):
    status = 503

    def __init__(self, detail: object, retry_after_s: float | str = RETRY_AFTER_S) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after_s)})


class Behind(Unavailable):
    pass


class ShuttingDown(Unavailable):
    pass


class PostgresNeeded(Unavailable):
    pass


class NoSnapshot(Unavailable):
    pass


HANDLED: tuple[type[Exception], ...] = (
    ApiError,
    HTTPException,
    RequestValidationError,
    redis.RedisError,
    *POSTGRES_DOWN,
)


def error_response(status: int, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    error = HTTPStatus(status).phrase.lower().replace(" ", "_")
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def response(exc: Exception) -> JSONResponse:
    """The answer to any of `HANDLED`."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.detail, exc.headers)
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, exc.detail, exc.headers)  # type: ignore[arg-type]
    if isinstance(exc, RequestValidationError):
        fields = [{"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors()]
        return error_response(422, fields)
    if isinstance(exc, redis.RedisError):
        log.error("api.redis_unavailable", error=str(exc))
        return error_response(503, "Redis is unavailable; nothing was stored", {"Retry-After": RETRY_AFTER_S})
    if isinstance(exc, POSTGRES_DOWN):
        log.error("api.postgres_unavailable", error=str(exc.orig).strip())
        detail = "Postgres is unavailable; ingest still works, reads of history need it"
        return error_response(503, detail, {"Retry-After": "5"})
    raise TypeError(f"no answer is mapped for {type(exc).__name__}") from exc
