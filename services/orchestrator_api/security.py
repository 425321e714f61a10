"""Credentials: Basic Auth for ingest, x-api-key for reads, x-internal-token for workers.

Every comparison is constant-time (`secrets.compare_digest` on bytes), and no
credential is ever logged. The checks are `async def` so FastAPI runs them
inline: a plain `def` dependency costs a thread-pool hop per request.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from fastapi import Request

from services.common.schemas import ErrorBody
from services.orchestrator_api import errors

INGEST_REALM = 'Basic realm="mdstack-ingest", charset="UTF-8"'
# The refusals of `check_api_key` and `check_internal_token`, for the routers' OpenAPI `responses`.
API_KEY_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "API_KEY is set and x-api-key is missing or wrong"}
}
TOKEN_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "x-internal-token is missing or wrong"}
}


def _equal(given: str | None, expected: str | None) -> bool:
    """True only for a credential that was sent and matches a configured, non-empty secret.

    Settings refuse empty secrets at start; this holds even if one got through (a test, a later
    assignment): nothing sent, or nothing to compare with, never passes.
    """
    if not given or not expected:
        return False
    return secrets.compare_digest(given.encode(), expected.encode())


async def check_basic(request: Request) -> None:
    settings = request.app.state.mdstack.settings
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    user = password = None
    if scheme.lower() == "basic" and encoded:
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = None
    # Both compared every time so timing does not tell which one was wrong.
    ok_user = _equal(user, settings.INGEST_USERNAME)
    ok_password = _equal(password, settings.INGEST_PASSWORD)
    if not (ok_user and ok_password):
        raise errors.LoginRequired("valid Basic Auth credentials are required", INGEST_REALM)


async def check_api_key(request: Request) -> None:
    expected = request.app.state.mdstack.settings.API_KEY
    if expected and not _equal(request.headers.get("x-api-key"), expected):
        raise errors.ApiKeyRequired("a valid x-api-key header is required")


async def check_internal_token(request: Request) -> None:
    expected = request.app.state.mdstack.settings.INTERNAL_TOKEN
    if not _equal(request.headers.get("x-internal-token"), expected):
        raise errors.TokenRequired("a valid x-internal-token header is required")
