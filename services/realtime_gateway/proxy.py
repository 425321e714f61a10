"""The read proxy `GET /api/<path>`: the dashboard's API reads, same origin, with the read key added here.

The browser never holds API_KEY: it asks the gateway (behind the viewer
login when reads are private, viewer.py), and the gateway asks the API at
API_URL with `x-api-key`. Only the read paths of `READ_PATHS` are forwarded
(`*` is one path segment), with only the query parameters of `QUERY`; the
host is always API_URL's, never the client's. The answer is read with a
size cap and a deadline, and passed back with its status and content type.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from fastapi import Response
from starlette.datastructures import QueryParams

from services.common.logging import get_logger
from services.common.schemas import ErrorBody
from services.common.settings import Settings
from services.realtime_gateway import metrics
from services.realtime_gateway.defaults import CONNECT_TIMEOUT_S, MAX_BODY_BYTES, MAX_CONNECTIONS, TIMEOUT_S
from services.realtime_gateway.errors import InvalidParameter, NotProxied, UpstreamFailed

log = get_logger(__name__)
READ_PATHS = frozenset(
    {
        "symbols",
        "symbols/*",
        "symbols/*/history",
        "symbols/*/candles",
        "rttm/metrics",
        "rttm/pipeline",
        "rttm/stuck",
        "rttm/dlq",
        "rttm/alerts",
        "rttm/trades/*",
        "system",
    }
)
QUERY = frozenset({"limit", "interval"})  # every query parameter of those reads
SEGMENT = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII: symbols and trade ids (the API checks the rest)
PASSED_HEADERS = ("content-type", "retry-after", "x-candles-partial")
PROXY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}}, "description": "The API's answer (any of its statuses)"},
    400: {"model": ErrorBody, "description": "A query parameter the read proxy does not forward"},
    404: {"model": ErrorBody, "description": "Not one of the read paths forwarded (or the API's 404)"},
    422: {"content": {"application/json": {}}, "description": "The API refused a parameter"},
    502: {"model": ErrorBody, "description": "The API did not answer usably (unreachable, refused the key, too large)"},
    503: {"content": {"application/json": {}}, "description": "The API's own 503 (e.g. no RTTM snapshot yet)"},
    504: {"model": ErrorBody, "description": f"The API did not answer within {TIMEOUT_S:g} s"},
}


def upstream_path(path: str) -> str:
    """`/<path>` on the API if `path` is one of READ_PATHS (each variable segment percent-encoded), else NotProxied."""
    parts = path.split("/")
    for shape in READ_PATHS:
        pattern = shape.split("/")
        if len(pattern) == len(parts) and all(
            _segment(s) if p == "*" else p == s for p, s in zip(pattern, parts, strict=True)
        ):
            return "/" + "/".join(quote(s, safe="") for s in parts)
    raise NotProxied(f"/api/{path[:200]} is not a read the gateway forwards")


def _segment(value: str) -> bool:
    return bool(SEGMENT.match(value)) and value not in {".", ".."}


def upstream_params(query: QueryParams) -> tuple[tuple[str, str], ...]:
    bad = sorted({name for name in query if name not in QUERY})
    if bad:
        names = ", ".join(name[:64] for name in bad)
        raise InvalidParameter(bad[0][:64], f"{names}: not forwarded (only {', '.join(sorted(QUERY))})")
    return tuple(query.multi_items())


class ReadProxy:
    def __init__(self, settings: Settings) -> None:
        self.timeout_s = TIMEOUT_S
        self.max_body_bytes = MAX_BODY_BYTES
        self.headers = {"accept": "application/json"}
        if settings.API_KEY:
            self.headers["x-api-key"] = settings.API_KEY
        self.client = httpx.AsyncClient(
            base_url=settings.api_url,
            timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS // 5),
            follow_redirects=False,
            trust_env=False,  # no HTTP(S)_PROXY from the environment between the gateway and the API
        )

    async def forward(self, path: str, query: QueryParams) -> Response:
        target, params = upstream_path(path), upstream_params(query)
        try:
            with anyio.fail_after(self.timeout_s):
                return await self._get(target, params)
        except (TimeoutError, httpx.TimeoutException):
            metrics.PROXIED.labels("timeout").inc()
            raise UpstreamFailed(f"the API did not answer within {self.timeout_s:g} s", status=504) from None
        except httpx.HTTPError as exc:
            metrics.PROXIED.labels("unreachable").inc()
            log.warning("gateway.api_unreachable", path=target, error=f"{type(exc).__name__}: {exc}")
            raise UpstreamFailed("the API could not be reached") from None

    async def _get(self, target: str, params: tuple[tuple[str, str], ...]) -> Response:
        async with self.client.stream("GET", target, params=params, headers=self.headers) as upstream:
            if upstream.status_code in (401, 403):  # ours, not the viewer's: the key is wrong or missing
                log.error("gateway.api_refused_key", path=target, status=upstream.status_code)
                metrics.PROXIED.labels("answered").inc()
                raise UpstreamFailed("the API refused the gateway's read key (is API_KEY the API's?)")
            body = bytearray()
            async for chunk in upstream.aiter_bytes():
                body += chunk
                if len(body) > self.max_body_bytes:
                    metrics.PROXIED.labels("too_large").inc()
                    raise UpstreamFailed(f"the API's answer is larger than {self.max_body_bytes} bytes")
            headers = {name: upstream.headers[name] for name in PASSED_HEADERS if name in upstream.headers}
        metrics.PROXIED.labels("answered").inc()
        return Response(bytes(body), status_code=upstream.status_code, headers=headers)

    async def aclose(self) -> None:
        await self.client.aclose()
