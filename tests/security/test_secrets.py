"""Secrets at start-up and at the door (issue 13, item 2).

Settings refuse an empty or short secret in every environment, normalise
MDSTACK_ENV, and in production refuse a deployment that would be open by
accident: no read key without PUBLIC_READS, no dashboard login for private
reads, a Redis without a password, CORS for any origin. Each refusal names the
variable and never shows its value. And should a secret be empty anyway, a
request without credentials still does not pass.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from pydantic import ValidationError

from services.common.settings import DEMO_SECRETS, MIN_SECRET_LENGTH, Settings, load_settings
from tests.factories import make_tick
from tests.security.helpers import BOTH_PATHS, NOTHING, redis_keys

REAL = {
    "INGEST_USERNAME": "feeder",
    "INGEST_PASSWORD": "ingest-password-7f3a",
    "INTERNAL_TOKEN": "internal-token-91c2",
}
PRIVATE = {
    **REAL,
    "API_KEY": "read-key-5b8e0d",
    "VIEWER_USERNAME": "viewer",
    "VIEWER_PASSWORD": "viewer-password-c4d1",
    "REDIS_URL": "redis://:redis-password-1e9f@redis:6379/0",
    "CORS_ORIGINS": "",
}


def refusal(**values: object) -> str:
    """The one message Settings refuse `values` with."""
    with pytest.raises(ValidationError) as refused:
        Settings(**values)  # type: ignore[arg-type]
    [error] = refused.value.errors()
    return str(error["msg"]).removeprefix("Value error, ")


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("name", ["INGEST_PASSWORD", "INTERNAL_TOKEN", "API_KEY", "VIEWER_PASSWORD"])
@pytest.mark.parametrize("value", ["short-1", "x" * (MIN_SECRET_LENGTH - 1)])
def test_a_short_secret_is_refused_in_every_environment_by_name_not_value(env: str, name: str, value: str) -> None:
    message = refusal(**{**PRIVATE, "MDSTACK_ENV": env, name: value})
    assert message == f"{name} is shorter than {MIN_SECRET_LENGTH} characters: set a longer secret"
    assert value not in message


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("name", ["INGEST_PASSWORD", "INTERNAL_TOKEN"])
@pytest.mark.parametrize("value", ["", " " * 20])
def test_an_empty_secret_is_refused_in_every_environment(env: str, name: str, value: str) -> None:
    message = refusal(**{**PRIVATE, "MDSTACK_ENV": env, name: value})
    assert message == f"{name} is empty: set a secret of at least {MIN_SECRET_LENGTH} characters"


def test_an_empty_ingest_user_is_refused() -> None:
    assert refusal(INGEST_USERNAME="  ") == "INGEST_USERNAME is empty: set the ingest Basic Auth user name"


@pytest.mark.parametrize("given", [{"VIEWER_USERNAME": "viewer"}, {"VIEWER_PASSWORD": "viewer-password-c4d1"}])
def test_the_viewer_login_is_both_or_neither(given: dict[str, str]) -> None:
    assert refusal(**given) == "VIEWER_USERNAME and VIEWER_PASSWORD go together: set both or neither"


def test_development_keeps_the_demo_secrets_and_an_empty_api_key_means_unset() -> None:
    settings = Settings(API_KEY="", VIEWER_USERNAME="", VIEWER_PASSWORD="")
    assert settings.demo_secrets_in_use == list(DEMO_SECRETS)
    assert (settings.API_KEY, settings.VIEWER_USERNAME, settings.VIEWER_PASSWORD) == (None, None, None)
    assert all(len(value) >= MIN_SECRET_LENGTH for name, value in DEMO_SECRETS.items() if name != "INGEST_USERNAME")


@pytest.mark.parametrize("env", ["production", "production ", " Production", "PROD", "prod\n", "Prod "])
def test_every_spelling_of_production_is_production(env: str) -> None:
    settings = Settings(MDSTACK_ENV=env, **PRIVATE)
    assert (settings.MDSTACK_ENV, settings.is_production) == ("production", True)
    assert refusal(MDSTACK_ENV=env, **{**PRIVATE, **DEMO_SECRETS}) == (
        "MDSTACK_ENV=production but demo defaults are in use for: INGEST_USERNAME, INGEST_PASSWORD, INTERNAL_TOKEN"
    )


@pytest.mark.parametrize(("env", "normal"), [("dev", "development"), (" Development", "development"), ("TEST", "test")])
def test_other_environments_are_normalised(env: str, normal: str) -> None:
    settings = Settings(MDSTACK_ENV=env)
    assert (settings.MDSTACK_ENV, settings.is_production) == (normal, False)


@pytest.mark.parametrize("env", ["prodution", "staging", "live", ""])
def test_an_unknown_environment_is_refused_rather_than_run_as_development(env: str) -> None:
    assert refusal(MDSTACK_ENV=env) == (
        f"MDSTACK_ENV must be development, test or production (or dev, prod), got {env!r}"
    )


def test_production_refuses_reads_open_by_accident() -> None:
    values = {**PRIVATE, "MDSTACK_ENV": "production"}
    for unset in (None, "", "  "):
        assert refusal(**{**values, "API_KEY": unset}) == (
            "MDSTACK_ENV=production and API_KEY is unset: set API_KEY (private reads) "
            "or PUBLIC_READS=true (reads open to anyone, on purpose)"
        )
    public = Settings(**{**values, "API_KEY": None, "PUBLIC_READS": True, "VIEWER_USERNAME": "", "VIEWER_PASSWORD": ""})
    assert (public.API_KEY, public.PUBLIC_READS, public.VIEWER_PASSWORD) == (None, True, None)


def test_production_with_private_reads_requires_the_dashboard_login() -> None:
    values = {**PRIVATE, "MDSTACK_ENV": "production", "VIEWER_USERNAME": None, "VIEWER_PASSWORD": None}
    assert refusal(**values) == (
        "MDSTACK_ENV=production with private reads needs the dashboard login: "
        "set VIEWER_USERNAME and VIEWER_PASSWORD (or PUBLIC_READS=true)"
    )
    assert Settings(**{**values, "PUBLIC_READS": True}).is_production


@pytest.mark.parametrize("service", ["worker", "flusher", "feeder", "migrate"])
def test_processes_that_serve_no_reads_hold_no_read_key_and_no_login(service: str) -> None:
    values = {**PRIVATE, "MDSTACK_ENV": "production", "SERVICE_NAME": service}
    settings = Settings(**{**values, "API_KEY": None, "VIEWER_USERNAME": None, "VIEWER_PASSWORD": None})
    assert (settings.API_KEY, settings.VIEWER_PASSWORD) == (None, None)
    assert refusal(**{**values, "REDIS_URL": "redis://redis:6379/0"}).startswith("MDSTACK_ENV=production and REDIS_URL")


def test_the_api_needs_the_read_key_but_not_the_login_the_gateway_needs_both() -> None:
    values = {**PRIVATE, "MDSTACK_ENV": "production", "VIEWER_USERNAME": None, "VIEWER_PASSWORD": None}
    assert Settings(**{**values, "SERVICE_NAME": "api"}).VIEWER_PASSWORD is None
    assert "API_KEY is unset" in refusal(**{**values, "SERVICE_NAME": "api", "API_KEY": None})
    assert "needs the dashboard login" in refusal(**{**values, "SERVICE_NAME": "gateway"})


@pytest.mark.parametrize(
    "url",
    ["redis://redis:6379/0", "redis://user@redis:6379/0", "redis://:@redis:6379/0", "rediss://redis:6380/0"],
)
def test_production_refuses_a_redis_url_without_a_password_and_does_not_echo_it(url: str) -> None:
    message = refusal(**{**PRIVATE, "MDSTACK_ENV": "production", "REDIS_URL": url})
    assert message == (
        "MDSTACK_ENV=production and REDIS_URL carries no password: "
        "use redis://:PASSWORD@host:6379/0 (or rediss://) with requirepass set on the server"
    )
    assert "redis:6379" not in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://:redis-password-1e9f@redis:6379/0",
        "redis://default:redis-password-1e9f@redis:6379/0",
        "rediss://:redis-password-1e9f@redis.example:6380/0",
        "redis://redis:6379/0?password=redis-password-1e9f",
    ],
)
def test_production_accepts_a_redis_url_with_a_password(url: str) -> None:
    assert Settings(**{**PRIVATE, "MDSTACK_ENV": "production", "REDIS_URL": url}).REDIS_URL == url


def test_production_takes_a_redis_without_a_password_only_when_told_so_on_purpose() -> None:
    values = {**PRIVATE, "MDSTACK_ENV": "production", "REDIS_URL": "redis://red-internal:6379"}
    assert Settings(**values, REDIS_ALLOW_NO_PASSWORD=True).REDIS_URL == "redis://red-internal:6379"
    assert refusal(**values).startswith("MDSTACK_ENV=production and REDIS_URL carries no password")


def test_production_refuses_cors_for_any_origin() -> None:
    for origins in ("*", "https://md.example, *"):
        assert refusal(**{**PRIVATE, "MDSTACK_ENV": "production", "CORS_ORIGINS": origins}) == (
            "MDSTACK_ENV=production and CORS_ORIGINS is '*': list the allowed origins (or leave empty)"
        )


def test_development_allows_what_production_refuses() -> None:
    """The demo's shape: no read key, no login, a Redis without a password, any origin."""
    settings = Settings(REDIS_URL="redis://127.0.0.1:6379/0", CORS_ORIGINS="*")
    assert (settings.is_production, settings.API_KEY, settings.VIEWER_PASSWORD) == (False, None, None)


def test_a_service_start_names_the_short_secret_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERNAL_TOKEN", "tiny-token")
    with pytest.raises(SystemExit) as refused:
        load_settings(SERVICE_NAME="api")
    assert str(refused.value) == (
        f"mdstack: INTERNAL_TOKEN is shorter than {MIN_SECRET_LENGTH} characters: set a longer secret"
    )


# Should a secret be empty after all (a later assignment, a settings bug), a request without credentials, or with
# empty ones, must still be refused: `_equal(None, "")` was true.
NO_CREDENTIALS = {
    "no header": {},
    "empty user and password": {"authorization": "Basic " + base64.b64encode(b":").decode()},
    "empty scheme value": {"authorization": "Basic "},
}


@BOTH_PATHS
@pytest.mark.anyio
@pytest.mark.parametrize("case", list(NO_CREDENTIALS))
async def test_ingest_without_credentials_is_refused_even_with_empty_secrets(
    api: httpx.AsyncClient,
    settings: Settings,
    case: str,
) -> None:
    settings.INGEST_USERNAME = ""
    settings.INGEST_PASSWORD = ""
    async with httpx.AsyncClient(transport=api._transport, base_url="http://api") as anonymous:
        response = await anonymous.post("/ingest/tick", json=make_tick(), headers=NO_CREDENTIALS[case])
    assert response.status_code == 401, response.text
    assert redis_keys(settings) == NOTHING


@pytest.mark.anyio
@pytest.mark.parametrize("headers", [{}, {"x-internal-token": ""}], ids=["no header", "empty header"])
async def test_internal_without_a_token_is_refused_even_with_an_empty_token(
    api: httpx.AsyncClient,
    settings: Settings,
    headers: dict[str, str],
) -> None:
    settings.INTERNAL_TOKEN = ""
    update = [{"symbol": "BTCUSDT", "view": {"symbol": "BTCUSDT", "version": 1}, "ts": 1}]
    response = await api.post("/internal/agg-update", json=update, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json() == {"error": "forbidden", "detail": "a valid x-internal-token header is required"}
