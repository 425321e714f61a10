"""Credentials: Basic Auth on every ingest route, `x-api-key` on reads, `x-internal-token` on /internal/*.

Each credential opens its own routes and no others; every secret is compared
in constant time; none reaches the logs; and a production start refuses the
demo defaults.
"""

from __future__ import annotations

import ast
import base64
import hmac
import inspect
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from harness.http import client_tls
from harness.stack import Stack, wait_ready
from services.common.embedded import free_port
from services.common.settings import DEMO_SECRETS, Settings
from services.orchestrator_api import security
from tests.factories import make_tick
from tests.security.helpers import BOTH_PATHS, INGEST, NOTHING, as_body, make_item, openapi, redis_keys

pytestmark = pytest.mark.anyio
READ_KEY = "read-key-0123"


def basic(user: str | bytes, password: str = "") -> str:
    """An Authorization value; `user` as bytes is sent as it is (no colon, not UTF-8...)."""
    raw = user if isinstance(user, bytes) else f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def documented(method: str, *, under: str = "/") -> list[str]:
    """Every `method` path of the API's OpenAPI document under `under`, parameters filled in: a new route is
    covered unasked."""
    examples = {"{symbol}": "BTCUSDT", "{trade_id}": "T1"}
    paths = []
    for path, operations in openapi("api")["paths"].items():
        if method in operations and path.startswith(under):
            for param, value in examples.items():
                path = path.replace(param, value)
            paths.append(path)
    return paths


OPEN = ["/health/liveness", "/health/readiness", "/metrics"]  # probes and scrapes carry no key


def anonymous(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client of the same app with no credentials (the `api` fixture's client sends Basic Auth)."""
    return httpx.AsyncClient(transport=api._transport, base_url="http://api")


# Authorization headers that must not open /ingest/* (test-user / test-password are the right ones).
BAD_BASIC: dict[str, dict[str, str]] = {
    "missing": {},
    "wrong-password": {"authorization": basic("test-user", "wrong")},
    "wrong-user": {"authorization": basic("wrong", "test-password")},
    "password-prefix": {"authorization": basic("test-user", "test-passwor")},
    "password-longer": {"authorization": basic("test-user", "test-password-and-more")},
    "password-newline": {"authorization": basic("test-user", "test-password\n")},
    "empty-password": {"authorization": basic("test-user", "")},
    "swapped": {"authorization": basic("test-password", "test-user")},
    "no-colon": {"authorization": basic(b"test-usertest-password")},
    "colon-in-password": {"authorization": basic("test-user", "test-password:")},
    "not-base64": {"authorization": "Basic !!!not-base64"},
    "not-utf8": {"authorization": basic(b"\xff\xfe:\xff")},
    "scheme-only": {"authorization": "Basic"},
    "bearer": {"authorization": "Bearer test-password"},
    "bare-password": {"authorization": "test-password"},
    "internal-token": {"x-internal-token": "test-internal-token"},
    "api-key": {"x-api-key": "test-password"},
}


@BOTH_PATHS
async def test_ingest_without_valid_basic_auth_is_401_on_every_route(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    assert documented("post", under="/ingest/") == list(INGEST)
    async with anonymous(api) as client:
        for path in INGEST:
            for case, headers in BAD_BASIC.items():
                response = await client.post(path, json=as_body(path, make_item(path)), headers=headers)

                assert response.status_code == 401, (path, case, response.text)
                assert response.headers["www-authenticate"] == security.INGEST_REALM
                assert response.json() == {
                    "error": "unauthorized",
                    "detail": "valid Basic Auth credentials are required",
                }
    assert redis_keys(settings) == NOTHING


@BOTH_PATHS
async def test_ingest_with_the_right_credentials_is_accepted_on_every_route_in_any_scheme_case(
    api: httpx.AsyncClient,
) -> None:
    """The control for the 401s above: the same requests with the right credentials go through."""
    async with anonymous(api) as client:
        for path in INGEST:
            for scheme in ("Basic", "basic", "BASIC"):
                headers = {"authorization": basic("test-user", "test-password").replace("Basic", scheme)}
                response = await client.post(path, json=as_body(path, make_item(path)), headers=headers)

                assert response.json()["accepted"] == 1, (path, scheme, response.text)


async def _endless(pulled: list[int]) -> AsyncIterator[bytes]:
    """A body that never ends, counting the chunks the server pulled."""
    while True:
        pulled[0] += 1
        yield b" " * 65_536


@BOTH_PATHS
async def test_ingest_refuses_bad_credentials_before_reading_the_body(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """No body is read for a caller without credentials: not parsed (no 400 to learn from), not buffered."""
    async with anonymous(api) as client:
        for path in INGEST:
            pulled = [0]
            endless = await client.post(path, content=_endless(pulled), headers={"content-type": "application/json"})
            garbage = await client.post(path, content=b"{not json", headers={"content-type": "application/json"})

            assert (endless.status_code, garbage.status_code) == (401, 401), path
            assert pulled[0] <= 1, path
    assert redis_keys(settings) == NOTHING


# x-api-key values that must not open the read API when API_KEY is set.
BAD_API_KEYS: dict[str, dict[str, str]] = {
    "missing": {},
    "wrong": {"x-api-key": "nope"},
    "empty": {"x-api-key": ""},
    "prefix": {"x-api-key": READ_KEY[:-1]},
    "longer": {"x-api-key": READ_KEY + "4"},
    "other-case": {"x-api-key": READ_KEY.upper()},
    "trailing-space": {"x-api-key": READ_KEY + " "},
    "as-bearer": {"authorization": f"Bearer {READ_KEY}"},
    "as-internal-token": {"x-internal-token": READ_KEY},
    "ingest-credentials": {"authorization": basic("test-user", "test-password")},
    "internal-token": {"x-internal-token": "test-internal-token"},
}


async def test_every_read_route_needs_the_api_key_when_one_is_set(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.API_KEY = READ_KEY
    paths = [path for path in documented("get") if path not in OPEN]
    assert len(paths) == 12  # /symbols/*, /rttm/*, /system
    async with anonymous(api) as client:
        for path in paths:
            for case, headers in BAD_API_KEYS.items():
                response = await client.get(path, headers=headers)

                assert response.status_code == 401, (path, case, response.text)
                assert response.json() == {"error": "unauthorized", "detail": "a valid x-api-key header is required"}
            right = await client.get(path, headers={"x-api-key": READ_KEY})
            assert right.status_code in (200, 404, 503), (path, right.text)  # 404/503: nothing ingested yet
        for path in OPEN:
            assert (await client.get(path)).status_code == 200, path


# x-internal-token values that must not open /internal/*.
BAD_TOKENS: dict[str, dict[str, str]] = {
    "missing": {},
    "wrong": {"x-internal-token": "nope"},
    "empty": {"x-internal-token": ""},
    "prefix": {"x-internal-token": "test-internal-toke"},
    "longer": {"x-internal-token": "test-internal-token2"},
    "other-case": {"x-internal-token": "TEST-INTERNAL-TOKEN"},
    "as-bearer": {"authorization": "Bearer test-internal-token"},
    "as-api-key": {"x-api-key": "test-internal-token"},
    "ingest-credentials": {"authorization": basic("test-user", "test-password")},
    "ingest-password": {"x-internal-token": "test-password"},
    "read-key": {"x-api-key": READ_KEY},
}


async def test_every_internal_route_needs_the_internal_token(api: httpx.AsyncClient, settings: Settings) -> None:
    """Not even the ingest credentials or the read key open /internal/*: a feeder cannot publish views."""
    settings.API_KEY = READ_KEY
    paths = documented("post", under="/internal/")
    assert paths == ["/internal/agg-update"]
    view = {"symbol": "AAA", "view": {"symbol": "AAA", "version": 1, "price": 1.0}, "ts": 1_767_225_600_000}
    async with anonymous(api) as client:
        for path in paths:
            for case, headers in BAD_TOKENS.items():
                response = await client.post(path, json=view, headers=headers)

                assert response.status_code == 403, (path, case, response.text)
                assert response.json() == {
                    "error": "forbidden",
                    "detail": "a valid x-internal-token header is required",
                }
        assert (await client.get("/symbols/AAA", headers={"x-api-key": READ_KEY})).status_code == 404  # not stored


async def test_internal_refuses_a_wrong_token_before_reading_the_body(api: httpx.AsyncClient) -> None:
    """FastAPI reads a declared body before the router's dependencies: the route reads its own, after the check."""
    async with anonymous(api) as client:
        pulled = [0]
        endless = await client.post(
            "/internal/agg-update", content=_endless(pulled), headers={"content-type": "application/json"}
        )
        garbage = await client.post(
            "/internal/agg-update", content=b"{not json", headers={"content-type": "application/json"}
        )

    assert (endless.status_code, garbage.status_code) == (403, 403)
    assert pulled[0] <= 1


async def test_internal_body_is_bounded_for_the_token_holder(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.MAX_BODY_BYTES = 2_000
    pulled = [0]
    response = await api.post(
        "/internal/agg-update",
        content=_endless(pulled),
        headers={"content-type": "application/json", "x-internal-token": settings.INTERNAL_TOKEN},
    )

    assert response.status_code == 413
    assert response.json()["detail"] == "body is over 2000 bytes; the limit is 2000 bytes"
    assert pulled[0] == 1


@BOTH_PATHS
async def test_every_secret_is_compared_in_constant_time(
    api: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behavioural: each expected secret goes through compare_digest (a plain == would never call it), and
    user and password are both compared even when the user is already wrong (no early exit to time)."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", spy)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    settings.API_KEY = READ_KEY
    async with anonymous(api) as client:
        await client.post("/ingest/tick", json=make_tick(), headers={"authorization": basic("wrong", "guess")})
        ingest = list(compared)
        await client.get("/symbols", headers={"x-api-key": "guess"})
        await client.post("/internal/agg-update", json=[], headers={"x-internal-token": "guess"})

    assert ingest == [(b"wrong", b"test-user"), (b"guess", b"test-password")]
    assert compared[2:] == [(b"guess", READ_KEY.encode()), (b"guess", b"test-internal-token")]


def test_security_compares_nothing_but_literals_with_equals() -> None:
    """Structural: in security.py, `==`, `!=` and `in` only ever meet a literal (like the scheme "basic"), so no
    secret can be compared with them."""
    tree = ast.parse(inspect.getsource(security))
    compares = [node for node in ast.walk(tree) if isinstance(node, ast.Compare)]
    for node in compares:
        if any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
            operands = [node.left, *node.comparators]
            assert any(isinstance(o, ast.Constant) for o in operands), ast.unparse(node)
    assert "compare_digest" in ast.unparse(tree)


@pytest.mark.e2e
def test_no_credential_reaches_the_logs(settings: Settings, tmp_path: Path) -> None:
    """The real API process at DEBUG: JSON lines only, and no password, token, key or Authorization value in
    them, from a refused request or an accepted one (and an accepted one that logs a rejected item)."""
    secrets_sent = {
        "ingest password": settings.INGEST_PASSWORD,
        "wrong password": "wrong-password-2718",
        "internal token": settings.INTERNAL_TOKEN,
        "wrong token": "wrong-token-3141",
        "read key": READ_KEY,
        "wrong key": "wrong-key-1618",
    }
    good, wrong = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD), ("test-user", "wrong-password-2718")
    secrets_sent |= {"good authorization": basic(*good)[6:], "wrong authorization": basic(*wrong)[6:]}
    stack = Stack(settings, tmp_path)
    stack.start("api", LOG_LEVEL="DEBUG", API_KEY=READ_KEY)
    try:
        wait_ready(stack.api_url)
        with httpx.Client(base_url=stack.api_url, timeout=10, verify=client_tls()) as http:
            assert http.post("/ingest/tick", json=make_tick(), auth=wrong).status_code == 401
            assert http.post("/ingest/tick", json=make_tick(), auth=good).status_code == 200
            assert http.post("/ingest/ticks", json=[make_tick(), make_tick(price=-1)], auth=good).status_code == 200
            assert http.get("/symbols", headers={"x-api-key": "wrong-key-1618"}).status_code == 401
            assert http.get("/symbols", headers={"x-api-key": READ_KEY}).status_code == 200
            internal = {"x-internal-token": "wrong-token-3141"}
            assert http.post("/internal/agg-update", json=[], headers=internal).status_code == 403
    finally:
        stack.stop_all()
    lines = (tmp_path / "api.log").read_text().splitlines()

    events = [json.loads(line)["event"] for line in lines]  # every line is one JSON object
    assert {"api.started", "ingest.rejected", "api.stopped"} <= set(events)
    text = "\n".join(lines)
    assert [name for name, value in secrets_sent.items() if value in text] == []


@pytest.mark.parametrize("demo", list(DEMO_SECRETS))
def test_production_settings_name_the_demo_secret_left_in_use(demo: str) -> None:
    real = {"INGEST_USERNAME": "feed", "INGEST_PASSWORD": "s3cret-password", "INTERNAL_TOKEN": "t0ken-0123456789"}
    with pytest.raises(ValidationError) as refused:
        Settings(MDSTACK_ENV="production", **{**real, demo: DEMO_SECRETS[demo]})
    assert [e["msg"] for e in refused.value.errors()] == [
        f"Value error, MDSTACK_ENV=production but demo defaults are in use for: {demo}"
    ]


@pytest.mark.parametrize("env", ["production", "PRODUCTION", "prod"])
def test_production_settings_name_every_demo_secret(env: str) -> None:
    with pytest.raises(ValidationError, match="in use for: INGEST_USERNAME, INGEST_PASSWORD, INTERNAL_TOKEN"):
        Settings(MDSTACK_ENV=env, **DEMO_SECRETS)


@pytest.mark.e2e
@pytest.mark.parametrize("module", ["services.orchestrator_api", "services.realtime_gateway"])
def test_service_refuses_to_start_in_production_with_demo_secrets_in_one_clear_line(
    module: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DEMO_SECRETS}  # none set: the demo defaults apply
    env |= {"MDSTACK_ENV": "production", "STATE_DIR": str(tmp_path)}
    env |= {"API_PORT": str(free_port()), "GATEWAY_PORT": str(free_port())}  # should it start after all
    done = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=30, check=False
    )

    assert done.returncode == 1
    assert done.stderr == (
        "mdstack: MDSTACK_ENV=production but demo defaults are in use for: "
        "INGEST_USERNAME, INGEST_PASSWORD, INTERNAL_TOKEN\n"
    )
    assert done.stdout == ""  # nothing started
