"""Gateway errors, all answered as `{"error": ..., "detail": ...}`:

GatewayError
├── InvalidParameter    -> 400, detail: [{"field": ..., "message": ...}]
└── TooManyStreams      -> 429 + Retry-After: over a connection limit (limits.py)
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    error = "internal_error"
    retry_after_s = 0  # > 0: answered with a Retry-After header

    @property
    def detail(self) -> object:
        return str(self)


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


class TooManyStreams(GatewayError):
    """Over SSE_MAX_PER_IP or SSE_MAX_CLIENTS (limits.py)."""

    status = 429
    error = "too_many_requests"
    retry_after_s = 5
