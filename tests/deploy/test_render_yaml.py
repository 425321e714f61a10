"""render.yaml against the code: services and stores, commands, environment, secrets, the dashboard.

Offline: the files are parsed and compared with the code (tests/deploy/files.py)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from services.common.settings import DEMO_SECRETS
from tests.deploy.files import (
    NEEDS,
    RENDER_INDIRECT,
    RENDER_VARS,
    ROOT,
    SECRETS,
    SETTINGS,
    load_yaml,
    npm_commands,
    package_scripts,
    parse_command,
    readme_commands,
    routes,
    settings_from,
    write_config_vars,
)

# --- render.yaml -------------------------------------------------------------------------------


@cache
def blueprint() -> dict[str, Any]:
    return load_yaml("render.yaml")


def render_services(kind: str | None = None) -> Iterator[dict[str, Any]]:
    for service in blueprint()["services"]:
        if kind is None or service["type"] == kind:
            yield service


def render_service(name: str) -> dict[str, Any]:
    return next(s for s in render_services() if s["name"] == name)


def render_env_entries(service: dict[str, Any]) -> list[dict[str, Any]]:
    groups = {g["name"]: g["envVars"] for g in blueprint().get("envVarGroups", [])}
    entries: list[dict[str, Any]] = []
    for entry in service.get("envVars", []):
        if "fromGroup" in entry:
            assert entry["fromGroup"] in groups, f"unknown env group {entry['fromGroup']}"
            entries += groups[entry["fromGroup"]]
        else:
            entries.append(entry)
    keys = [e["key"] for e in entries]
    assert len(keys) == len(set(keys)), f"{service['name']}: a variable is set twice"
    return entries


PLACEHOLDERS = {
    # With its credentials: the Key Value instance's internal authentication is on (render.yaml's header).
    ("keyvalue", "connectionString"): "redis://red-placeholder:generated-password@red-placeholder:6379",
    ("database", "connectionString"): "postgresql://mdstack:secret@dpg-placeholder/mdstack",
    ("web", "hostport"): "mdstack-api-placeholder:10000",
}
# What a person types at a prompt (sync: false) where a URL would not be a valid answer.
PROMPTED = {
    "KAFKA_BOOTSTRAP_SERVERS": "broker-1.kafka.example:9096",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "KAFKA_SASL_USERNAME": "mdstack",
    "KAFKA_SASL_PASSWORD": "prompted-kafka-password",
}


def render_env(service: dict[str, Any], prompted: dict[str, str] = PROMPTED) -> dict[str, str]:
    """The environment Render would give the process, with stand-ins for what it generates and what is asked."""
    env: dict[str, str] = {}
    for entry in render_env_entries(service):
        if "value" in entry:
            env[entry["key"]] = str(entry["value"])
        elif entry.get("generateValue"):
            env[entry["key"]] = "generated-" + entry["key"].lower()
        elif entry.get("sync") is False:
            env[entry["key"]] = prompted.get(entry["key"], "https://prompted.example")
        elif "fromDatabase" in entry:
            env[entry["key"]] = PLACEHOLDERS[("database", entry["fromDatabase"]["property"])]
        else:
            ref = entry["fromService"]
            env[entry["key"]] = PLACEHOLDERS[(ref["type"], ref["property"])]
    return env


def split_start(command: str, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """`A="x$B" mdstack worker`: the assignments (expanded with env) and the argv."""
    words = shlex.split(command)
    assigned: dict[str, str] = {}
    while words and re.fullmatch(r"\w+=.*", words[0]):
        key, _, value = words.pop(0).partition("=")

        def expand(m: re.Match[str]) -> str:
            assert m.group(1) in env, f"{command!r} uses ${m.group(1)}, which the service does not get"
            return env[m.group(1)]

        assigned[key] = re.sub(r"\$\{?(\w+)\}?", expand, value)
    return assigned, words


def python_services() -> list[dict[str, Any]]:
    return [s for s in render_services() if s.get("runtime") == "python"]


def render_command(service: dict[str, Any]) -> str:
    _, argv = split_start(service["startCommand"], render_env(service))
    assert argv[0] == "mdstack", f"{service['name']} does not start with mdstack"
    return argv[1]


def test_render_has_the_services_and_the_stores() -> None:
    commands = {render_command(s): s["type"] for s in python_services()}
    assert commands == {
        "api": "web",
        "gateway": "web",
        "worker": "worker",
        "flusher": "worker",
        "feeder": "worker",
        "kafka-consumer": "worker",
    }
    (kv,) = render_services("keyvalue")
    assert kv["ipAllowList"] == []
    assert kv["maxmemoryPolicy"] == "noeviction"
    (db,) = blueprint()["databases"]
    assert db["name"]
    static = [s for s in render_services("web") if s.get("runtime") == "static"]
    assert len(static) == 1
    regions = {s.get("region") for s in python_services()} | {kv.get("region"), db.get("region")}
    assert len(regions) == 1, "the private network joins services of one region only"


@pytest.mark.parametrize("field_name", ["startCommand", "preDeployCommand"])
def test_render_commands_are_mdstack_commands(field_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = 0
    for service in python_services():
        if field_name not in service:
            continue
        found += 1
        env = render_env(service)
        assigned, argv = split_start(service[field_name], env)
        assert set(assigned) <= SETTINGS
        assert argv[0] == "mdstack"
        assert argv[1] in readme_commands()
        parse_command(argv[1:], monkeypatch)
        # The hashed lock, then mdstack itself (tests/supply_chain/test_lock.py checks the lock).
        assert (
            service["buildCommand"]
            == "pip install --require-hashes --no-deps -r requirements/prod.txt && pip install --no-deps ."
        )
    assert found


def test_render_migrates_before_the_api_deploys() -> None:
    api = next(s for s in python_services() if render_command(s) == "api")
    assert api["preDeployCommand"] == "mdstack migrate"


@pytest.mark.parametrize("command", ["api", "worker", "flusher", "gateway", "feeder", "kafka-consumer"])
def test_render_gives_each_service_what_it_needs(command: str) -> None:
    service = next(s for s in python_services() if render_command(s) == command)
    env = render_env(service)
    assigned, _ = split_start(service["startCommand"], env)
    names = set(env)
    assert names <= SETTINGS | RENDER_VARS | RENDER_INDIRECT, names - SETTINGS - RENDER_VARS - RENDER_INDIRECT
    for name in names & RENDER_INDIRECT:
        assert f"${name}" in service["startCommand"], f"{name} is set but never used"
    full = env | assigned
    missing = NEEDS[command] - set(full)
    assert not missing, f"{service['name']} lacks {sorted(missing)}"
    # MDSTACK_ENV=production: Settings refuses any demo secret, so this proves none is left.
    settings = settings_from(full)
    assert settings.is_production
    assert env["PYTHON_VERSION"].startswith("3.11.")
    for key in ("API_URL", "TARGET_URL"):
        if key in NEEDS[command]:
            assert full[key].startswith("http://"), f"{key} needs a scheme: {full[key]!r}"
    if service["type"] == "web":
        host, port = {"api": ("API_HOST", "API_PORT"), "gateway": ("GATEWAY_HOST", "GATEWAY_PORT")}[command]
        assert env[host] == "0.0.0.0"
        assert env[port] == env["PORT"], "Render sends traffic to PORT"
        assert service["healthCheckPath"] == "/health/readiness"
        assert service["healthCheckPath"] in routes(command)


def test_render_secrets_are_generated_or_prompted() -> None:
    for service in render_services():
        for entry in render_env_entries(service) if "envVars" in service else []:
            if entry["key"] in SECRETS:
                assert entry.get("generateValue") is True or entry.get("sync") is False, entry
            if entry["key"] in DEMO_SECRETS and "value" in entry:
                assert entry["value"] != DEMO_SECRETS[entry["key"]]


def test_render_generates_each_shared_secret_once() -> None:
    """A secret generated per service would differ between the API and its callers."""
    users = {
        name: [s["name"] for s in python_services() if name in render_env(s)] for name in SECRETS | set(DEMO_SECRETS)
    }
    for service in python_services():
        for entry in service.get("envVars", []):
            if entry.get("key") in users and entry.get("generateValue"):
                assert users[entry["key"]] == [service["name"]], f"{entry['key']} is generated by {service['name']}"


def test_render_references_name_defined_resources() -> None:
    names = {(s["type"], s["name"]) for s in render_services()}
    databases = {d["name"] for d in blueprint()["databases"]}
    properties = {
        "keyvalue": {"connectionString", "host", "port", "hostport"},
        "web": {"host", "port", "hostport"},
        "pserv": {"host", "port", "hostport"},
    }
    for service in render_services():
        for entry in render_env_entries(service) if "envVars" in service else []:
            if "fromDatabase" in entry:
                assert entry["fromDatabase"]["name"] in databases
                assert entry["fromDatabase"]["property"] == "connectionString"
            if "fromService" in entry:
                ref = entry["fromService"]
                assert (ref["type"], ref["name"]) in names, f"{service['name']}: unknown service {ref}"
                assert ref.get("property") in properties[ref["type"]] or "envVarKey" in ref
    kv = {s["name"] for s in render_services("keyvalue")}
    for service in python_services():
        entries = {e["key"]: e for e in render_env_entries(service)}
        if "REDIS_URL" in entries:
            assert entries["REDIS_URL"]["fromService"]["name"] in kv
        if "PG_URL" in entries:
            assert entries["PG_URL"]["fromDatabase"]["name"] in databases


def test_render_is_the_public_demo_one_setting_away_from_private() -> None:
    (group,) = [g for g in blueprint()["envVarGroups"] if g["name"] == "mdstack-shared"]
    shared = {e["key"]: e for e in group["envVars"]}
    assert shared["MDSTACK_ENV"]["value"] == "production"
    assert shared["PUBLIC_READS"]["value"] == "true", "the demo is public on purpose"
    for secret in ("API_KEY", "VIEWER_PASSWORD", "INGEST_PASSWORD", "INTERNAL_TOKEN"):
        assert shared[secret].get("generateValue") is True, f"{secret}: generated once, so private is one switch"
    assert shared["VIEWER_USERNAME"]["value"]
    text = (ROOT / "render.yaml").read_text()
    assert "PUBLIC_READS=false" in text, "the header says how to make it private"


@pytest.mark.parametrize("command", ["api", "gateway"])
def test_render_serves_metrics_on_a_private_port(command: str) -> None:
    service = next(s for s in python_services() if render_command(s) == command)
    env = render_env(service)
    assert int(env["METRICS_PORT"]) not in {0, int(env["PORT"])}, "Render routes only PORT from the internet"
    assert service["healthCheckPath"] != "/metrics"
    cors = next(e for e in render_env_entries(service) if e["key"] == "CORS_ORIGINS")
    assert cors.get("sync") is False, "the dashboard's origin is asked for; never *"


def test_render_key_value_is_private_and_reached_with_its_credentials() -> None:
    (kv,) = render_services("keyvalue")
    assert kv["ipAllowList"] == []
    for service in python_services():
        entries = {e["key"]: e for e in render_env_entries(service)}
        if "REDIS_URL" in entries:
            assert entries["REDIS_URL"]["fromService"] == {
                "type": "keyvalue",
                "name": kv["name"],
                "property": "connectionString",
            }


def test_render_kafka_consumer_idles_until_a_broker_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Blueprint cannot be conditional: with the prompts left blank the consumer must idle, not crash-loop."""
    service = render_service("mdstack-kafka-consumer")
    assert service["type"] == "worker"
    assert service["plan"] == render_service("mdstack-flusher")["plan"], "background workers have no free plan"
    entries = {e["key"]: e for e in render_env_entries(service)}
    kafka = {k for k in entries if k.startswith("KAFKA_")}
    assert kafka == set(PROMPTED)
    assert all(entries[k] == {"key": k, "sync": False} for k in kafka), "asked for, never a literal"
    assert "PG_URL" not in entries, "it hands batches to Redis"
    blank = render_env(service, prompted=dict.fromkeys(PROMPTED, ""))
    assigned, argv = split_start(service["startCommand"], blank)
    assert parse_command(argv[1:], monkeypatch).idle_without_broker is True
    settings = settings_from(blank | assigned)
    assert settings.is_production
    assert settings.KAFKA_BOOTSTRAP_SERVERS is None  # so main() idles (tests/kafka_consumer/test_idle.py)
    assert settings.KAFKA_SECURITY_PROTOCOL == "PLAINTEXT"
    named = settings_from(render_env(service) | assigned)
    assert (named.KAFKA_BOOTSTRAP_SERVERS, named.KAFKA_SASL_MECHANISM) == (
        PROMPTED["KAFKA_BOOTSTRAP_SERVERS"],
        PROMPTED["KAFKA_SASL_MECHANISM"],
    )


def test_render_dashboard_is_a_static_build_of_frontend() -> None:
    (site,) = [s for s in render_services("web") if s.get("runtime") == "static"]
    commands = [part.strip() for part in site["buildCommand"].split("&&")]
    assert commands[0] == "cd frontend"
    for command in npm_commands(commands):
        words = command.split()
        if words[1] == "run":
            assert words[2] in package_scripts(), command
    assert commands[-2:] == ["npm run build", "npm run config"], "config.json is written after the build"
    out_dir = re.search(r'outDir:\s*"([^"]+)"', (ROOT / "frontend/vite.config.ts").read_text())
    assert out_dir
    assert site["staticPublishPath"] == f"frontend/{out_dir.group(1)}"
    env = {e["key"]: e for e in site["envVars"]}
    assert set(env) <= write_config_vars() | RENDER_VARS
    # Without these, config.json would point browsers at 127.0.0.1.
    for key in ("MDSTACK_API_URL", "MDSTACK_STREAM_URL"):
        assert key in write_config_vars()
        assert env[key].get("sync") is False or env[key].get("value", "").startswith("https://")
