"""The viewer login: with reads private, nothing a browser reads is served without it; public, no login."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.sse import fields
from services.common.settings import Settings
from services.realtime_gateway.app import create_app
from services.realtime_gateway.viewer import LOGIN_FAILURES_PER_MIN, basic_credentials
from tests.realtime_gateway.helpers import Gateway, Publisher, in_process, open_stream

pytestmark = pytest.mark.anyio
LOGIN = ("viewer", "viewer-password-long")
# Reachable without the login on purpose: probes and Prometheus (METRICS_PORT moves /metrics off the public port).
OPEN = {"/health/liveness", "/health/readiness", "/metrics"}
# One request per thing a browser reads; none starts a stream (conflate=1 is refused, 400, after the login).
GUARDED = ["/", "/index.html", "/assets/app.js", "/config.json", "/stream?conflate=1", "/api/symbols", "/api/system"]


def private(settings: Settings, tmp_path: Path, **login: str | None) -> Settings:
    (tmp_path / "assets").mkdir(exist_ok=True)
    (tmp_path / "index.html").write_text("<!doctype html><div id=root></div>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    values: dict[str, object] = {"VIEWER_USERNAME": LOGIN[0], "VIEWER_PASSWORD": LOGIN[1], **login}
    return settings.model_copy(update={"API_KEY": "read-key", "FRONTEND_DIST": str(tmp_path), **values})


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(LOGIN[0], "wrong"),
        basic("wrong", LOGIN[1]),
        basic(LOGIN[0], LOGIN[1] + "x"),
        basic("", ""),
        {"authorization": "Basic !!!"},
        {"authorization": "Bearer " + LOGIN[1]},
        {"x-api-key": "read-key"},  # the API's key is not a login here
    ],
    ids=["none", "wrong-password", "wrong-user", "longer-password", "empty", "malformed", "bearer", "api-key"],
)
async def test_private_reads_refuse_without_the_viewer_login(
    settings: Settings, tmp_path: Path, headers: dict[str, str]
) -> None:
    async with in_process(private(settings, tmp_path)) as client:
        for path in GUARDED:
            response = await client.get(path, headers=headers)

            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == 'Basic realm="mdstack dashboard", charset="UTF-8"'
            detail = "the viewer login (HTTP Basic) is missing or wrong"
            assert response.json() == {"error": "unauthorized", "detail": detail}


async def test_private_reads_pass_with_the_viewer_login(settings: Settings, tmp_path: Path) -> None:
    async with in_process(private(settings, tmp_path)) as client:
        index = await client.get("/", auth=LOGIN)
        asset = await client.get("/assets/app.js", auth=LOGIN)
        config = await client.get("/config.json", auth=LOGIN)
        stream = await client.get("/stream?conflate=1", auth=LOGIN)
    assert index.text == "<!doctype html><div id=root></div>"
    assert asset.text == "console.log(1)"
    assert config.json()["public"] is False
    assert stream.status_code == 400  # past the login: the parameter is checked


async def test_a_utf8_login_matches(settings: Settings, tmp_path: Path) -> None:
    async with in_process(private(settings, tmp_path, VIEWER_PASSWORD="pässwörd-ünïcode")) as client:
        response = await client.get("/config.json", headers=basic(LOGIN[0], "pässwörd-ünïcode"))
    assert response.status_code == 200


async def test_private_without_a_viewer_login_refuses_everyone_naming_the_settings(
    settings: Settings, tmp_path: Path
) -> None:
    async with in_process(private(settings, tmp_path, VIEWER_USERNAME=None, VIEWER_PASSWORD=None)) as client:
        anonymous = await client.get("/config.json")
        empty = await client.get("/config.json", headers=basic("", ""))
    for response in (anonymous, empty):
        assert response.status_code == 401
        assert response.json()["detail"] == "no viewer login is configured: set VIEWER_USERNAME and VIEWER_PASSWORD"


async def test_health_and_metrics_stay_open_when_private(settings: Settings, tmp_path: Path) -> None:
    async with in_process(private(settings, tmp_path)) as client:
        for path in sorted(OPEN):
            assert (await client.get(path)).status_code == 200, path


async def test_every_route_but_health_and_metrics_needs_the_login(settings: Settings, tmp_path: Path) -> None:
    """A route added later without the login fails here: each documented one is either refused or in OPEN."""
    settings = private(settings, tmp_path)
    paths = {path.replace("{path}", "symbols") for path in create_app(settings).openapi()["paths"]}
    assert {"/stream", "/config.json", "/api/symbols"} <= paths
    async with in_process(settings) as client:
        refused = {path for path in paths if (await client.get(path + "?conflate=1")).status_code == 401}
    assert paths - refused == OPEN


@pytest.mark.parametrize(
    ("overrides", "public"),
    [({}, True), ({"API_KEY": "read-key", "PUBLIC_READS": True}, True), ({"API_KEY": "read-key"}, False)],
    ids=["no-key", "public-reads", "private"],
)
async def test_public_reads_need_no_login(settings: Settings, overrides: dict[str, object], public: bool) -> None:
    async with in_process(settings.model_copy(update=overrides)) as client:
        response = await client.get("/config.json")
    assert response.status_code == (200 if public else 401)


async def test_a_private_stream_runs_with_the_viewer_login(
    start_gateway: Callable[[Settings], Gateway], settings: Settings, tmp_path: Path, publisher: Publisher
) -> None:
    gateway = start_gateway(private(settings, tmp_path))
    async with gateway.http() as http:
        assert (await http.get("/stream")).status_code == 401
        http.auth = httpx.BasicAuth(*LOGIN)
        async with open_stream(http) as reader:
            event_id = await publisher.one()
            assert fields(await reader.event())["id"] == event_id


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic dXNlcg==", None),  # "user", no colon
        ("Basic dXNlcjpwOnE=", (b"user", b"p:q")),  # the password may hold colons
        ("basic dXNlcjpw", (b"user", b"p")),  # the scheme is case-insensitive
        ("Basic dXNlcjpw!", None),
    ],
)
def test_basic_credentials_parse_only_well_formed_headers(header: str | None, parsed: object) -> None:
    assert basic_credentials(header) == parsed


async def test_other_methods_on_the_dashboards_files_are_405_not_a_login_prompt(
    settings: Settings, tmp_path: Path
) -> None:
    async with in_process(private(settings, tmp_path)) as client:
        for method in ("POST", "TRACE", "DELETE"):
            for path in ("/", "/index.html", "/config.json", "/stream"):
                assert (await client.request(method, path)).status_code == 405, (method, path)


async def test_guessing_stops_after_too_many_wrong_logins_from_one_client(settings: Settings, tmp_path: Path) -> None:
    guesser = {"x-forwarded-for": "198.51.100.7"}  # the in-process client is 127.0.0.1: a trusted proxy
    async with in_process(private(settings, tmp_path)) as client:
        for _ in range(LOGIN_FAILURES_PER_MIN + 5):  # no credentials: the browser's first request, not a guess
            assert (await client.get("/config.json", headers=guesser)).status_code == 401
        for i in range(LOGIN_FAILURES_PER_MIN):
            wrong = await client.get("/config.json", headers={**guesser, **basic(LOGIN[0], f"guess-{i}")})
            assert wrong.status_code == 401
        right_guess = await client.get("/config.json", headers={**guesser, **basic(*LOGIN)})
        someone_else = await client.get("/config.json", headers={"x-forwarded-for": "198.51.100.8"}, auth=LOGIN)
    assert right_guess.status_code == 429  # refused before any comparison: a right guess looks like a wrong one
    assert right_guess.headers["retry-after"] == "3"  # 20 a minute: one more in 3 s
    assert right_guess.json()["detail"] == "20 wrong viewer logins in a minute; retry in 3 s"
    assert someone_else.status_code == 200
