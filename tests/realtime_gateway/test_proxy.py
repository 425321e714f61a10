"""The read proxy `/api/...`: the real API on a real port behind it, the read key added by the gateway only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from harness.http import client_tls
from harness.servers import serve
from services.common.embedded import free_port
from services.common.settings import Settings
from services.orchestrator_api.app import create_app as create_api
from services.realtime_gateway.app import create_app as create_gateway
from services.realtime_gateway.proxy import READ_PATHS, upstream_path
from tests.realtime_gateway.helpers import in_process, sample

pytestmark = pytest.mark.anyio
KEY = "read-key-of-the-api"
LOGIN = ("viewer", "viewer-password-long")


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    """The real API, requiring KEY for reads."""
    with serve(create_api(settings.model_copy(update={"API_KEY": KEY}))) as url:
        yield url


def behind(settings: Settings, api_url: str, **overrides: object) -> Settings:
    """A private gateway reading `api_url`."""
    values = {"API_KEY": KEY, "API_URL": api_url, "VIEWER_USERNAME": LOGIN[0], "VIEWER_PASSWORD": LOGIN[1]}
    return settings.model_copy(update={**values, **overrides})


async def test_reads_pass_with_the_key_added_by_the_gateway(settings: Settings, api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, verify=client_tls()) as direct:
        without_key = await direct.get("/symbols")
        with_key = await direct.get("/symbols", headers={"x-api-key": KEY})
    async with in_process(behind(settings, api_url)) as client:
        proxied = await client.get("/api/symbols", auth=LOGIN)
        system = await client.get("/api/system", auth=LOGIN)
    assert without_key.status_code == 401  # the API itself wants the key: the browser never sends it
    assert (proxied.status_code, proxied.json()) == (200, with_key.json())
    assert proxied.headers["content-type"] == "application/json"
    assert system.status_code == 200
    assert KEY not in proxied.text + system.text


async def test_the_apis_own_refusals_pass_through(settings: Settings, api_url: str) -> None:
    async with in_process(behind(settings, api_url)) as client:
        unknown = await client.get("/api/symbols/NOPE", auth=LOGIN)
        bad = await client.get("/api/symbols/BTCUSDT/candles", params={"interval": "7m"}, auth=LOGIN)
        not_yet = await client.get("/api/rttm/metrics", auth=LOGIN)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["detail"]] == ["query.interval"]
    assert (not_yet.status_code, not_yet.headers["retry-after"]) == (503, "1")


@pytest.mark.parametrize(
    "path",
    [
        "/api/internal/agg-update",
        "/api/ingest/tick",
        "/api/metrics",
        "/api/health/readiness",
        "/api/docs",
        "/api/openapi.json",
        "/api/",
        "/api/symbols/BTCUSDT/history/extra",
        "/api/symbols/%2E%2E",  # `..`: not a symbol, and never a dot segment upstream
        "/api/symbols/%2E",
        "/api/symbols/%2E%2E%2Finternal%2Fagg-update",
        "/api/http://evil.example/symbols",
        "/api//evil.example/symbols",
        "/api/symbols/" + "A" * 129,
        "/api/symbols/A%20B",
    ],
)
async def test_paths_off_the_allow_list_are_not_forwarded(settings: Settings, api_url: str, path: str) -> None:
    async with in_process(behind(settings, api_url)) as client:
        response = await client.get(path, auth=LOGIN)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert "is not a read the gateway forwards" in response.json()["detail"]


def test_each_read_path_maps_to_the_same_path_on_the_api() -> None:
    assert {upstream_path(shape.replace("*", "X.1")) for shape in READ_PATHS} == {
        "/" + shape.replace("*", "X.1") for shape in READ_PATHS
    }
    assert upstream_path("rttm/trades/T#1?x") == "/rttm/trades/T%231%3Fx"  # one segment, never a query


async def test_query_parameters_other_than_limit_and_interval_are_refused(settings: Settings, api_url: str) -> None:
    async with in_process(behind(settings, api_url)) as client:
        response = await client.get("/api/symbols", params={"limit": "5", "x-api-key": "mine"}, auth=LOGIN)
    assert response.status_code == 400
    assert response.json()["detail"] == [
        {"field": "x-api-key", "message": "x-api-key: not forwarded (only interval, limit)"}
    ]


async def test_a_wrong_gateway_key_is_a_502_not_a_login_prompt(settings: Settings, api_url: str) -> None:
    async with in_process(behind(settings, api_url, API_KEY="not-the-apis-key")) as client:
        response = await client.get("/api/symbols", auth=LOGIN)
    assert response.status_code == 502
    assert "www-authenticate" not in response.headers
    assert response.json() == {
        "error": "bad_gateway",
        "detail": "the API refused the gateway's read key (is API_KEY the API's?)",
    }


async def test_an_unreachable_api_is_a_502(settings: Settings) -> None:
    before = sample("mdstack_gateway_api_proxied_total", {"outcome": "unreachable"})
    async with in_process(behind(settings, f"http://127.0.0.1:{free_port()}")) as client:
        response = await client.get("/api/symbols", auth=LOGIN)
    assert (response.status_code, response.json()) == (
        502,
        {"error": "bad_gateway", "detail": "the API could not be reached"},
    )
    assert sample("mdstack_gateway_api_proxied_total", {"outcome": "unreachable"}) == before + 1


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[str]:
    """A TCP peer that reads a request and answers `reply` (None: never answers): what a hung or runaway API
    looks like from the gateway."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


async def test_an_api_that_does_not_answer_is_a_504_within_the_deadline(settings: Settings) -> None:
    with raw_server(None) as url:
        app = create_gateway(behind(settings, url))
        async with in_process(app) as client:
            app.state.gateway.proxy.timeout_s = 0.3
            response = await client.get("/api/symbols", auth=LOGIN)
    assert (response.status_code, response.json()) == (
        504,
        {"error": "gateway_timeout", "detail": "the API did not answer within 0.3 s"},
    )


async def test_an_answer_past_the_size_cap_is_a_502(settings: Settings) -> None:
    body = b"[" + b"1," * 600_000 + b"1]"
    reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    with raw_server(reply) as url:
        app = create_gateway(behind(settings, url))
        async with in_process(app) as client:
            app.state.gateway.proxy.max_body_bytes = 1_000_000
            response = await client.get("/api/symbols", auth=LOGIN)
    assert (response.status_code, response.json()) == (
        502,
        {"error": "bad_gateway", "detail": "the API's answer is larger than 1000000 bytes"},
    )


async def test_a_public_gateway_proxies_without_a_login(settings: Settings, api_url: str) -> None:
    async with in_process(behind(settings, api_url, PUBLIC_READS=True)) as client:
        response = await client.get("/api/symbols")
    assert response.status_code == 200
