"""docker-compose.yml against the code: services, commands, environment, secrets, health checks, order.

Offline: the files are parsed and compared with the code (tests/deploy/files.py)."""

from __future__ import annotations

import re
import shlex
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest

from services.common.settings import DEMO_SECRETS
from tests.deploy.files import (
    APP_SERVICES,
    COMPOSE_REQUIRED,
    COMPOSE_SERVICES,
    NEEDS,
    POSTGRES_IMAGE_VARS,
    REDIS_IMAGE_VARS,
    ROOT,
    SECRETS,
    SETTINGS,
    load_yaml,
    parse_command,
    readme_commands,
    routes,
    settings_from,
    url_of,
    write_config_vars,
)

# --- docker-compose.yml ------------------------------------------------------------------------


def interpolate(value: object) -> str:
    """Compose's ${VAR:-default} with nothing set in the environment but COMPOSE_REQUIRED, and $$ as a literal $."""
    text = str(value)
    text = re.sub(r"(?<!\$)\$\{(\w+):\?[^}]*\}", lambda m: COMPOSE_REQUIRED[m.group(1)], text)
    text = re.sub(r"(?<!\$)\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)
    return text.replace("$$", "$")


@cache
def compose() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")


def compose_env(name: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in (compose()["services"][name].get("environment") or {}).items()}


def compose_command(name: str) -> list[str]:
    command = compose()["services"][name]["command"]
    return command if isinstance(command, list) else shlex.split(command)


def test_compose_names_every_service() -> None:
    services = compose()["services"]
    assert set(services) >= COMPOSE_SERVICES
    for name in APP_SERVICES:
        assert services[name]["build"]["context"] == "."
        assert services[name]["image"] == services["api"]["image"], "one image for every Python service"
    assert services["dashboard"]["build"]["context"] == "./frontend"
    assert services["worker"]["deploy"]["replicas"] == 2


def test_compose_redis_keeps_an_append_only_file() -> None:
    command = " ".join(compose()["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_commands_are_mdstack_commands(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = compose_command(name)
    assert argv[0] == name, "each service runs the command of its name"
    assert name in readme_commands()
    parse_command(argv, monkeypatch)


def test_compose_environment_names_are_read_by_someone() -> None:
    services = compose()["services"]
    shared = set(compose()["x-env"])
    assert shared <= SETTINGS, shared - SETTINGS
    for name, service in services.items():
        names = set(service.get("environment") or {})
        allowed = {"postgres": POSTGRES_IMAGE_VARS, "redis": REDIS_IMAGE_VARS, "dashboard": write_config_vars()}.get(
            name, SETTINGS
        )
        assert names <= allowed, f"{name}: {sorted(names - allowed)} are read by nothing"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_compose_gives_each_service_what_it_needs(name: str) -> None:
    env = compose_env(name)
    missing = NEEDS[name] - set(env)
    assert not missing, f"{name} lacks {sorted(missing)}"
    settings = settings_from(env)  # the values parse as the code's types
    services = compose()["services"]
    assert urlsplit(env["PG_URL"]).hostname == "postgres"
    pg = compose_env("postgres")
    url = urlsplit(env["PG_URL"])
    assert (url.username, url.password, url.path) == (
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        "/" + pg["POSTGRES_DB"],
    )
    if "REDIS_URL" in NEEDS[name]:
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    api_port = settings_from(compose_env("api")).API_PORT
    for key in ("API_URL", "TARGET_URL"):
        if key in NEEDS[name]:
            target = urlsplit(env[key])
            assert (target.scheme, target.hostname, target.port) == ("http", "api", api_port)
            assert "api" in services[name]["depends_on"]
    assert settings.MDSTACK_ENV == "development", "demo secrets are for local use only"


def test_compose_secrets_are_overridable_demo_defaults() -> None:
    shared = compose()["x-env"]
    for name in DEMO_SECRETS:
        assert re.fullmatch(rf"\$\{{{name}:-[^}}]*\}}", shared[name]), f"{name} cannot be set from the environment"
        assert interpolate(shared[name]) == DEMO_SECRETS[name]
    assert shared["API_KEY"] == "${API_KEY:-}"


def test_compose_redis_requires_a_password_with_no_default() -> None:
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    for name in REDIS_IMAGE_VARS:
        assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}(\s*#.*)?", str(redis["environment"][name])), name
    assert "PONG" in " ".join(redis["healthcheck"]["test"]), "the check must see PONG, not a NOAUTH error"
    for name in APP_SERVICES:
        url = urlsplit(compose_env(name).get("REDIS_URL", "redis://:redis-test-password@redis"))
        assert url.password == COMPOSE_REQUIRED["REDIS_PASSWORD"], f"{name}: REDIS_URL without the password"
    assert compose()["x-env"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")


def test_compose_passes_the_read_settings_and_no_key_to_the_browser() -> None:
    shared = compose()["x-env"]
    for name in ("PUBLIC_READS", "VIEWER_USERNAME", "VIEWER_PASSWORD", "CORS_ORIGINS"):
        assert re.fullmatch(rf"\$\{{{name}:-[^}}]*\}}", shared[name]), f"{name} cannot be set from the environment"
    assert interpolate(shared["PUBLIC_READS"]) == "false"
    assert interpolate(shared["CORS_ORIGINS"]) != "*"
    # Empty by default, and both together: a user name without its password is refused.
    assert interpolate(shared["VIEWER_USERNAME"]) == interpolate(shared["VIEWER_PASSWORD"]) == ""
    dashboard = compose_env("dashboard")
    assert not {k for k in dashboard if "KEY" in k or "PASSWORD" in k or "TOKEN" in k}, "a secret in the browser"


def test_compose_services_share_one_value_of_each_secret() -> None:
    for name in SECRETS | set(DEMO_SECRETS):
        values = {compose_env(s)[name] for s in APP_SERVICES if name in compose_env(s)}
        assert len(values) <= 1, f"{name} differs between services"


def listening_port(name: str) -> int:
    settings = settings_from(compose_env(name))
    return {"api": settings.API_PORT, "gateway": settings.GATEWAY_PORT}.get(name, settings.METRICS_PORT)


@pytest.mark.parametrize("name", sorted(APP_SERVICES - {"migrate"}))
def test_compose_healthchecks_probe_real_routes(name: str) -> None:
    check = compose()["services"][name]["healthcheck"]["test"]
    port, path = url_of(" ".join(check))
    assert port == listening_port(name) != 0
    assert path == "/health/readiness"
    assert path in routes({"api": "api", "gateway": "gateway"}.get(name, "health"))
    for mapping in compose()["services"][name].get("ports", []):
        assert int(str(mapping).rsplit(":", 1)[-1]) == port


def test_compose_dashboard_healthcheck_and_urls() -> None:
    service = compose()["services"]["dashboard"]
    template = (ROOT / "frontend/docker/default.conf.template").read_text()
    listen = re.search(r"listen (\d+);", template)
    assert listen
    assert url_of(" ".join(service["healthcheck"]["test"])) == (int(listen.group(1)), "/config.json")
    env = compose_env("dashboard")
    assert urlsplit(env["MDSTACK_API_URL"]).port == listening_port("api")
    stream = urlsplit(env["MDSTACK_STREAM_URL"])
    assert (stream.port, stream.path) == (listening_port("gateway"), "/stream")
    assert "/stream" in routes("gateway")


def test_compose_depends_on_conditions_hold() -> None:
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck") or {}
                assert check.get("test"), f"{target} has no health check"
                assert not check.get("disable"), f"{target}'s health check is disabled"
            else:
                assert condition == "service_completed_successfully"
                assert compose_command(target) == ["migrate"]
                assert services[target].get("restart", "no") == "no"
    for name in APP_SERVICES - {"migrate"}:
        if "PG_URL" in NEEDS[name]:
            assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
