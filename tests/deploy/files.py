"""What the deployment-file tests (tests/deploy/test_{dockerfiles,compose,render_yaml,workflow}.py) share:
readers of the files and of what the code accepts, and the names each command needs.

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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

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
