"""Gateway errors, all answered as `{"error": ..., "detail": ...}`:

GatewayError
└── InvalidParameter    -> 400, detail: [{"field": ..., "message": ...}]
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    error = "internal_error"

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
