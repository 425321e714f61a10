"""Offline checks of the deployment files against the code: Dockerfiles, compose, Render, CI.

No Docker engine and no Render account are needed: the files are parsed (PyYAML and a small
Dockerfile reader) and compared with what the code really accepts. Settings fields come from
`Settings.model_fields`, commands from `services.cli.COMMANDS` and each command's own argparse
parser, routes from the FastAPI apps and from `serve_health`, the frontend's commands and
variables from frontend/package.json and scripts/write-config.mjs. Renaming a setting, a route,
a command, an option or a script breaks these tests until the deployment files follow.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shlex
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.cli import COMMANDS
from services.common.health import serve_health
from services.common.settings import DEMO_SECRETS, Settings
from services.feeder.settings import FeederSettings

ROOT = Path(__file__).resolve().parents[2]
# Settings agreed for issue 13 (names.md) that other branches add to services/common/settings.py; the union keeps
# these tests honest before and after they merge.
AGREED_SETTINGS = frozenset({"PUBLIC_READS", "VIEWER_USERNAME", "VIEWER_PASSWORD", "TRUSTED_PROXIES"})
# The feeder reads its own env vars (services/feeder/settings.py) besides the shared ones.
SETTINGS = frozenset(Settings.model_fields) | frozenset(FeederSettings.env_names()) | AGREED_SETTINGS

# What each command needs from its environment to do its job (beyond defaults that only make
# sense on one machine). Every name must stay a Settings field: see test_needs_are_settings.
NEEDS: dict[str, set[str]] = {
    "api": {"REDIS_URL", "PG_URL", "INGEST_USERNAME", "INGEST_PASSWORD", "INTERNAL_TOKEN"},
    "worker": {"REDIS_URL", "INTERNAL_TOKEN", "API_URL"},  # posts views to the API's /internal/*
    "flusher": {"REDIS_URL", "PG_URL"},
    "gateway": {"REDIS_URL"},
    "feeder": {"TARGET_URL", "INGEST_USERNAME", "INGEST_PASSWORD"},
    "migrate": {"PG_URL"},
    "kafka-consumer": {"REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"},
}
# Secrets: never a literal in a committed file meant for a real deployment.
SECRETS = {name for name in DEMO_SECRETS if name.endswith(("PASSWORD", "TOKEN"))} | {"API_KEY"}
# Variables that are not Settings fields, and who reads them.
POSTGRES_IMAGE_VARS = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}  # the postgres image
REDIS_IMAGE_VARS = {"REDIS_PASSWORD", "REDISCLI_AUTH"}  # the redis service's command and health check
# Compose variables without a default (${NAME:?message}): what a user must set, as the tests set them.
COMPOSE_REQUIRED = {"REDIS_PASSWORD": "redis-test-password"}
RENDER_VARS = {"PORT", "PYTHON_VERSION", "NODE_VERSION"}  # Render's runtime and build images
RENDER_INDIRECT = {"API_HOSTPORT"}  # host:port from fromService, given a scheme by the start command
IMAGE_VARS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "HEALTHCHECK_URL"}
BUILD_VARS = {"PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}

APP_SERVICES = {"migrate", "api", "worker", "flusher", "gateway", "feeder", "kafka-consumer"}
COMPOSE_SERVICES = APP_SERVICES | {"redis", "postgres", "dashboard"}


# --- readers ---------------------------------------------------------------------------------


def load_yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text())


@dataclass
class Instruction:
    op: str
    args: str

    def json_args(self) -> list[str]:
        return json.loads(self.args)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, op: str) -> list[Instruction]:
        return [i for i in self.instructions if i.op == op]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for token in shlex.split(ins.args):
                key, _, value = token.partition("=")
                out[key] = value
        return out

    def runs(self) -> list[str]:
        """Every shell command of its RUN lines, split at `&&`."""
        return shell_commands([ins.args for ins in self.all("RUN")])


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: self.args.get(m.group(1), m.group(0)), text)


@cache
def dockerfile(path: str) -> Dockerfile:
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / path).read_text().splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        elif op == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            stages[-1].instructions.append(Instruction(op, rest))
    return Dockerfile(args, stages)


@cache
def package_scripts() -> dict[str, str]:
    return json.loads((ROOT / "frontend/package.json").read_text())["scripts"]


@cache
def write_config_vars() -> set[str]:
    """The variables frontend/scripts/write-config.mjs reads into config.json."""
    return set(re.findall(r"process\.env\.(\w+)", (ROOT / "frontend/scripts/write-config.mjs").read_text()))


@cache
def write_config_keys() -> set[str]:
    text = (ROOT / "frontend/scripts/write-config.mjs").read_text()
    body = re.search(r"const config = \{(.*?)\n\};", text, re.S)
    assert body, "write-config.mjs: no `const config = {...}`"
    return set(re.findall(r"^\s*(\w+):", body.group(1), re.M))


@cache
def readme_commands() -> set[str]:
    """The `mdstack <command>` rows of the README's Commands table."""
    return set(re.findall(r"^\| `mdstack ([\w-]+)", (ROOT / "README.md").read_text(), re.M))


@cache
def make_recipe(target: str) -> list[str]:
    """A Makefile target's commands, with $(BIN) spelled out as the README runs them."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(BIN)/", ".venv/bin/"))
    return recipe


def shell_commands(lines: list[str]) -> list[str]:
    """Simple commands of shell lines: split at `&&` and `;`, continuation backslashes dropped."""
    return [part.strip() for line in lines for part in re.split(r"&&|;", line.rstrip("\\")) if part.strip()]


def npm_commands(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("npm ")]


@cache
def routes(kind: str) -> frozenset[str]:
    """The HTTP paths a service answers: the FastAPI apps' own, or `serve_health`'s (probed)."""
    settings = Settings(REDIS_URL="redis://127.0.0.1:1/0", PG_URL="postgresql://u@127.0.0.1:1/db")
    if kind == "api":
        from services.orchestrator_api.app import create_app

        return frozenset(create_app(settings).openapi()["paths"])
    if kind == "gateway":
        from services.realtime_gateway.app import create_app as create_gateway

        return frozenset(create_gateway(settings).openapi()["paths"])
    assert kind == "health"
    candidates = {"/health/liveness", "/health/readiness", "/metrics", "/", "/healthz", "/ready"}
    server = serve_health("127.0.0.1", 0, lambda: [])
    try:
        found = set()
        for path in candidates:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}", timeout=5):
                    found.add(path)
            except urllib.error.HTTPError:
                pass
        return frozenset(found)
    finally:
        server.shutdown()
        server.server_close()


class _Parsed(Exception):
    pass


def parse_command(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """Run `mdstack <argv>` up to its argument parsing: a real command with options it accepts."""
    assert argv, "empty command"
    assert argv[0] in COMMANDS, f"`mdstack {argv[0]}` is not a command (services/cli.py)"
    module = importlib.import_module(COMMANDS[argv[0]][0])
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        raise _Parsed(original(self, args, namespace))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
        try:
            module.main(argv[1:])
        except _Parsed as parsed:
            return parsed.args[0]
        except SystemExit as exc:
            pytest.fail(f"`mdstack {shlex.join(argv)}` is refused by its parser (exit {exc.code})")
    pytest.fail(f"`mdstack {shlex.join(argv)}` never parsed its arguments")


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings a process with exactly this environment would get (the test's own env aside)."""
    values = {k: v for k, v in env.items() if k in Settings.model_fields}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k in Settings.model_fields}  # e.g. CI's REDIS_URL
    try:
        return Settings(**values)  # type: ignore[arg-type]
    finally:
        os.environ.update(saved)


def url_of(text: str) -> tuple[int, str]:
    found = re.search(r"http://127\.0\.0\.1:(\d+)(/[^'\" ]*)", text)
    assert found, f"no http://127.0.0.1:PORT/path in {text!r}"
    return int(found.group(1)), found.group(2)


# --- Dockerfiles -------------------------------------------------------------------------------


def test_image_is_multi_stage_slim_python_with_the_dashboard() -> None:
    df = dockerfile("Dockerfile")
    assert len(df.stages) >= 3
    assert df.resolve(df.final.base).split("@")[0] == "python:3.11-slim"  # by digest: tests/supply_chain
    assert df.resolve(df.stage("build").base) == df.resolve(df.final.base)
    assert df.resolve(df.stage("dashboard").base).startswith("node:20")
    requires = re.search(r'requires-python\s*=\s*">=(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    assert requires
    assert df.resolve(df.final.base).startswith(f"python:{requires.group(1)}")


def test_image_installs_dependencies_before_copying_the_source() -> None:
    build = dockerfile("Dockerfile").stage("build")
    ops = [(i.op, i.args) for i in build.instructions]
    copy_pyproject = ops.index(("COPY", "pyproject.toml ./"))
    deps = next(n for n, (op, args) in enumerate(ops) if op == "RUN" and "pip install --require-hashes" in args)
    source = next(n for n, (op, args) in enumerate(ops) if op == "COPY" and args.startswith("services"))
    install = next(n for n, (op, args) in enumerate(ops) if op == "RUN" and "pip install --no-deps ." in args)
    assert copy_pyproject < deps < source < install
    # Nothing but pyproject.toml and the image's lock is copied before the dependency layer.
    copied = [args for op, args in ops[:deps] if op == "COPY"]
    assert copied == ["pyproject.toml ./", "requirements/prod.txt ./requirements/prod.txt"]


def test_image_runs_mdstack_as_a_non_root_user() -> None:
    final = dockerfile("Dockerfile").final
    users = final.all("USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    assert final.all("ENTRYPOINT")[-1].json_args() == ["mdstack"]
    command = final.all("CMD")[-1].json_args()
    assert command[0] in COMMANDS
    assert command[0] in readme_commands()


def test_image_environment_is_settings_and_binds_every_interface() -> None:
    df = dockerfile("Dockerfile")
    env = df.final.env()
    assert set(env) <= SETTINGS | IMAGE_VARS, set(env) - SETTINGS - IMAGE_VARS
    assert set(df.stage("build").env()) <= IMAGE_VARS | BUILD_VARS
    assert env["API_HOST"] == "0.0.0.0"
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    # The gateway serves the dashboard from where the node stage's build is copied.
    copies = [i.args.split() for i in df.final.all("COPY") if i.args.startswith("--from=dashboard")]
    assert [c[-1] for c in copies] == [env["FRONTEND_DIST"]]
    assert copies[0][1] == "/frontend/dist"


def test_image_healthcheck_is_a_real_api_route() -> None:
    final = dockerfile("Dockerfile").final
    check = final.all("HEALTHCHECK")[-1].args
    assert "HEALTHCHECK_URL" in check
    port, path = url_of(final.env()["HEALTHCHECK_URL"])
    assert port == Settings.model_fields["API_PORT"].default
    assert path in routes("api")
    assert "EXPOSE" in {i.op for i in final.instructions}
    exposed = {int(p) for i in final.all("EXPOSE") for p in i.args.split()}
    assert exposed == {Settings.model_fields["API_PORT"].default, Settings.model_fields["GATEWAY_PORT"].default}


@pytest.mark.parametrize(("path", "stage"), [("Dockerfile", "dashboard"), ("frontend/Dockerfile", "build")])
def test_frontend_build_runs_the_makefile_commands(path: str, stage: str) -> None:
    runs = npm_commands(dockerfile(path).stage(stage).runs())
    made = npm_commands(shell_commands(make_recipe("$(DIST)")))
    assert runs == made, f"{path} builds the dashboard differently from `make frontend`"
    for command in runs:
        words = command.split()
        if words[1] == "run":
            assert words[2] in package_scripts()
    assert "npm run build" in runs


def test_frontend_image_serves_write_config_json_as_non_root() -> None:
    df = dockerfile("frontend/Dockerfile")
    assert df.resolve(df.final.base).startswith("nginxinc/nginx-unprivileged:")
    assert df.final.all("USER")[-1].args not in {"root", "0"}
    env = df.final.env()
    assert set(env) == write_config_vars(), "the image's variables are write-config.mjs's"
    templates = [i.args.split() for i in df.final.all("COPY") if "/etc/nginx/templates/" in i.args]
    assert templates, "no nginx template"
    template = (ROOT / "frontend" / templates[0][0]).read_text()
    assert set(re.findall(r"\$\{(\w+)\}", template)) == write_config_vars()
    body = re.search(r"location = /config\.json \{.*?return 200 '(.*?)';", template, re.S)
    assert body, "the template does not serve /config.json"
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], body.group(1))
    assert set(json.loads(rendered)) == write_config_keys()
    listen = re.search(r"listen (\d+);", template)
    assert listen
    assert {int(p) for i in df.final.all("EXPOSE") for p in i.args.split()} == {int(listen.group(1))}
    port, path = url_of(df.final.all("HEALTHCHECK")[-1].args)
    assert (port, path) == (int(listen.group(1)), "/config.json")


@pytest.mark.parametrize("path", ["Dockerfile", "frontend/Dockerfile"])
def test_dockerignore_keeps_what_the_build_copies(path: str) -> None:
    context = ROOT / Path(path).parent
    patterns = [
        line.strip()
        for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {"node_modules", "**/node_modules"} & set(patterns)
    if path == "Dockerfile":
        assert {".git", ".venv"} <= set(patterns)
    for stage in dockerfile(path).stages:
        for ins in stage.all("COPY"):
            if ins.args.startswith("--from"):
                continue
            for source in ins.args.split()[:-1]:
                source = source.rstrip("/") or "."
                assert (context / source).exists(), f"{path} copies {source}, which does not exist"
                hit = [p for p in patterns if fnmatch(source, p.rstrip("/")) or source.startswith(p.rstrip("/") + "/")]
                assert not hit, f"{path} copies {source} but .dockerignore drops it ({hit})"


@pytest.mark.e2e
@pytest.mark.parametrize("name", [".env", ".env.production", "frontend/.env"])
def test_env_files_are_never_committed_nor_built_in(name: str) -> None:
    """docker-compose.yml tells users to keep their secrets in .env."""
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", name], check=False)
    assert ignored.returncode == 0, f"git would commit {name}"
    context = ROOT / ("frontend" if name.startswith("frontend/") else "")
    patterns = [p.strip() for p in (context / ".dockerignore").read_text().splitlines() if p.strip()]
    assert any(fnmatch(Path(name).name, p) for p in patterns), f"the image build would copy {name}"


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


# --- .github/workflows/ci.yml --------------------------------------------------------------------


@cache
def workflow() -> dict[str, Any]:
    return load_yaml(".github/workflows/ci.yml")


def job_runs(job: str) -> list[str]:
    return [step["run"].strip() for step in workflow()["jobs"][job]["steps"] if "run" in step]


def test_workflow_parses_and_has_the_jobs() -> None:
    wf: dict[Any, Any] = workflow()
    triggers = wf["on"] if "on" in wf else wf[True]  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    assert {"lint", "typecheck", "test", "frontend", "docker"} <= set(wf["jobs"])


def test_workflow_test_job_runs_ci_run_against_service_containers() -> None:
    job = workflow()["jobs"]["test"]
    assert "bash .ci/run" in job_runs("test")
    assert job["timeout-minutes"] <= 90
    ci_run = (ROOT / ".ci/run").read_text()
    exported = dict(re.findall(r"export (REDIS_URL|PG_URL)=(\S+);", ci_run))
    assert set(exported) == {"REDIS_URL", "PG_URL"}
    services = job["services"]
    for key, service in (("REDIS_URL", "redis"), ("PG_URL", "postgres")):
        ours, theirs = urlsplit(job["env"][key]), urlsplit(exported[key])
        assert service in services
        assert ours.hostname == service, "the job container reaches its services by name"
        assert (ours.scheme, ours.username, ours.port, ours.path) == (
            theirs.scheme,
            theirs.username,
            theirs.port,
            theirs.path,
        )
    assert services["postgres"]["env"]["POSTGRES_DB"] == urlsplit(job["env"]["PG_URL"]).path.lstrip("/")
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_workflow_quick_jobs_run_the_makefile_commands() -> None:
    lint = make_recipe("lint")
    for job in ("lint", "typecheck"):
        commands = [c for c in job_runs(job) if c != "make install"]
        assert commands, job
        assert set(commands) <= set(lint), f"{job} runs something `make lint` does not"
    assert set(lint) == {c for job in ("lint", "typecheck") for c in job_runs(job)} - {"make install"}
    assert job_runs("frontend") == ["make frontend-test"]
    assert make_recipe("frontend-test")


def test_workflow_builds_the_images_and_versions_agree() -> None:
    runs = job_runs("docker")
    assert "docker compose build" in runs
    assert "docker compose config --quiet" in runs
    node = {
        str(step["with"]["node-version"])
        for job in workflow()["jobs"].values()
        for step in job["steps"]
        if "setup-node" in step.get("uses", "")
    }
    engines = json.loads((ROOT / "frontend/package.json").read_text())["engines"]["node"]
    major = re.search(r"\d+", engines)
    assert major
    assert node == {major.group(0)}
    assert (
        dockerfile("Dockerfile")
        .resolve(dockerfile("Dockerfile").stage("dashboard").base)
        .startswith(f"node:{major.group(0)}")
    )
    python = {
        str(step["with"]["python-version"])
        for job in workflow()["jobs"].values()
        for step in job["steps"]
        if "setup-python" in step.get("uses", "")
    }
    assert python == {"3.11"}
    assert workflow()["jobs"]["test"]["container"]["image"].startswith("python:3.11")


def test_needs_are_settings() -> None:
    for command, names in NEEDS.items():
        assert command in COMMANDS
        assert names <= SETTINGS, f"{command}: {sorted(names - SETTINGS)} are no longer settings"
