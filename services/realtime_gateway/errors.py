"""Gateway errors, all answered as `{"error": ..., "detail": ...}`:

GatewayError
├── InvalidParameter    -> 400, detail: [{"field": ..., "message": ...}]
├── LoginRequired       -> 401 + WWW-Authenticate: reads are private (viewer.py)
├── NotProxied          -> 404: a path the read proxy does not forward (proxy.py)
├── TooManyStreams      -> 429 + Retry-After: over a connection limit (limits.py)
├── RateLimited         -> 429 + Retry-After (seconds until the client's budget has room)
│   ├── TooManyReplays  -> over SSE_REPLAYS_PER_MIN (limits.py)
│   └── TooManyLogins   -> too many wrong viewer logins from one client (viewer.py)
└── UpstreamFailed      -> 502 / 504: the API did not answer the read proxy usably (proxy.py)
"""

from __future__ import annotations

from fastapi.responses import JSONResponse


class GatewayError(Exception):
    status = 500
    error = "internal_error"
    retry_after_s = 0  # > 0: answered with a Retry-After header

    @property
    def detail(self) -> object:
        return str(self)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else {}

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail}, status_code=self.status, headers=self.headers)


class InvalidParameter(GatewayError):
    """A query parameter or header of `GET /stream` that cannot be used."""

    status = 400
    error = "bad_request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @property
    def detail(self) -> object:
        return [{"field": self.field, "message": self.message}]


class LoginRequired(GatewayError):
    """Reads are private and the request has no valid viewer login (viewer.py)."""

    status = 401
    error = "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="mdstack dashboard", charset="UTF-8"'}


class NotProxied(GatewayError):
    """`/api/...` outside the read proxy's allow-list (proxy.py)."""

    status = 404
    error = "not_found"


class TooManyStreams(GatewayError):
    """Over SSE_MAX_PER_IP or SSE_MAX_CLIENTS (limits.py)."""

    status = 429
    error = "too_many_requests"
    retry_after_s = 5


class RateLimited(GatewayError):
    status = 429
    error = "too_many_requests"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyReplays(RateLimited):
    """Over SSE_REPLAYS_PER_MIN Last-Event-ID replays from one client (limits.py)."""


class TooManyLogins(RateLimited):
    """Over viewer.LOGIN_FAILURES_PER_MIN wrong logins from one client: guessing stops here (viewer.py)."""


class UpstreamFailed(GatewayError):
    """The API behind the read proxy failed to answer (502) or answered too late (504)."""

    error = "bad_gateway"

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status
        self.error = "gateway_timeout" if status == 504 else "bad_gateway"
