"""The viewer login: HTTP Basic on everything the gateway serves to browsers, when reads are private.

Reads are private when API_KEY is set and PUBLIC_READS is false. Then `/`
(the dashboard's files), `/config.json`, `/stream` and the read proxy
`/api/...` answer 401 with `WWW-Authenticate: Basic` unless the request
carries VIEWER_USERNAME / VIEWER_PASSWORD. Basic rather than a session
cookie: the browser asks once and then sends the credentials by itself with
every same-origin request, EventSource's included (which cannot set headers),
and there is no session state or signing key to keep. Health and metrics stay
open (probes and Prometheus hold no viewer login).

Private with no viewer login configured fails closed: every guarded request
is refused, naming the settings to set (production refuses to start so).

Guessing is slowed per client (limits.py's client key): after
LOGIN_FAILURES_PER_MIN wrong logins in a minute, the client's requests with
credentials get 429 + Retry-After before any comparison, so a right guess
cannot be told from a wrong one until its budget refills.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.logging import get_logger
from services.common.schemas import ErrorBody
from services.common.settings import Settings
from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import LOGIN_FAILURES_PER_MIN
from services.realtime_gateway.errors import GatewayError, LoginRequired, TooManyLogins
from services.realtime_gateway.limits import PerMinute, client_key

log = get_logger(__name__)
WRONG = "the viewer login (HTTP Basic) is missing or wrong"
LOGIN_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Reads are private and the viewer login is missing or wrong"},
    429: {"model": ErrorBody, "description": "Too many wrong viewer logins from this client; see Retry-After"},
}


class ViewerLogin:
    def __init__(self, settings: Settings) -> None:
        self.required = not settings.reads_are_public
        self.username = (settings.VIEWER_USERNAME or "").encode()
        self.password = (settings.VIEWER_PASSWORD or "").encode()
        self.configured = bool(self.username and self.password)
        self.failures = PerMinute(LOGIN_FAILURES_PER_MIN)
        if self.required and not self.configured:
            log.warning(
                "gateway.viewer_login_unset",
                detail="reads are private (API_KEY set, PUBLIC_READS false) but VIEWER_USERNAME/VIEWER_PASSWORD "
                "are not set: the dashboard, /stream and /api refuse everyone",
            )

    async def check(self, request: Request) -> None:
        """Pass, or raise LoginRequired (401 + WWW-Authenticate)."""
        if not self.required:
            return
        if not self.configured:
            raise LoginRequired("no viewer login is configured: set VIEWER_USERNAME and VIEWER_PASSWORD")
        given = basic_credentials(request.headers.get("authorization"))
        if given is None:  # the browser's first request, before it asks for the login
            raise LoginRequired(WRONG)
        who = client_key(request.client.host if request.client else "-")
        wait = self.failures.wait_s(who)
        if wait:
            metrics.LOGINS_FAILED.inc()
            raise TooManyLogins(f"{LOGIN_FAILURES_PER_MIN} wrong viewer logins in a minute; retry in {wait} s", wait)
        # Both compared every time, constant-time, so timing tells neither which one was wrong nor how much.
        ok_user = secrets.compare_digest(given[0], self.username)
        ok_password = secrets.compare_digest(given[1], self.password)
        if not (ok_user and ok_password):
            self.failures.spend(who)
            metrics.LOGINS_FAILED.inc()
            log.warning("gateway.viewer_login_failed", client=who)
            raise LoginRequired(WRONG)


def basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of an `Authorization: Basic` header, as UTF-8 bytes; None if absent or malformed."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:  # bytes compared as bytes: the configured login is matched as UTF-8 (RFC 7617's charset)
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except binascii.Error:
        return None
    return (user, password) if colon else None


async def require_viewer(request: Request) -> None:
    """FastAPI dependency of every browser-facing route."""
    login: ViewerLogin = request.app.state.viewer
    await login.check(request)


class Guarded:
    """An ASGI app (the dashboard's static files) behind the viewer login."""

    def __init__(self, app: ASGIApp, login: ViewerLogin) -> None:
        self.app = app
        self.login = login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Other methods go on to StaticFiles' 405: a login prompt would promise them an answer.
        if scope["type"] == "http" and self.login.required and scope["method"] in ("GET", "HEAD"):
            try:
                await self.login.check(Request(scope))
            except GatewayError as exc:
                await exc.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
