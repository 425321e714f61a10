"""Fixtures of the Helm chart tests (tests/deploy/chart.py renders; the fixtures pick what)."""

from __future__ import annotations

import argparse
import importlib
import os
from typing import Any

import pytest

from services.cli import COMMANDS
from services.common.settings import Settings
from services.orchestrator_api.app import create_app as create_api
from services.realtime_gateway.app import create_app as create_gateway
from tests.deploy.chart import (
    CASES,
    REPO,
    SETTINGS_FIELDS,
    Case,
    Manifests,
    render,
    route_paths,
)


@pytest.fixture(scope="module")
def helm() -> str:
    path = os.environ.get("HELM") or str(REPO / ".tools" / "helm" / "helm")
    if not os.access(path, os.X_OK):
        if os.environ.get("MDSTACK_REQUIRE_HELM") == "1":
            pytest.fail(
                f"Helm is required here (MDSTACK_REQUIRE_HELM=1) but {path} is missing: deploy/tools/install-helm.sh"
            )
        pytest.skip("no Helm: deploy/tools/install-helm.sh installs it")
    return path


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture(scope="module")
def manifests(helm: str, case: Case) -> Manifests:
    return render(helm, case)


@pytest.fixture(scope="module")
def full(helm: str) -> Manifests:
    """The values with the Ingress on."""
    return render(helm, CASES["full"])


@pytest.fixture(scope="module")
def api_paths() -> set[str]:
    return route_paths(create_api(Settings(REDIS_URL="redis://unused", PG_URL="postgresql://unused")))


@pytest.fixture(scope="module")
def gateway_paths() -> set[str]:
    return route_paths(create_gateway(Settings(REDIS_URL="redis://unused", PG_URL="postgresql://unused")))


class Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


@pytest.fixture
def parse_as_service(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run a service's main() in the container's environment up to its argument parsing; return the options."""
    parse_args = argparse.ArgumentParser.parse_args

    def stop_after_parsing(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise Parsed(parse_args(self, *args, **kwargs))

    def parse(argv: list[str], env: dict[str, str]) -> tuple[argparse.Namespace, Settings]:
        for field in SETTINGS_FIELDS:
            monkeypatch.delenv(field, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        module = importlib.import_module(COMMANDS[argv[0]][0])
        with monkeypatch.context() as patched:
            patched.setattr(argparse.ArgumentParser, "parse_args", stop_after_parsing)
            try:
                module.main(argv[1:])
            except Parsed as parsed:
                return parsed.namespace, Settings()
            except SystemExit as exc:
                pytest.fail(f"`mdstack {' '.join(argv)}` is rejected by its parser (exit {exc.code})")
        pytest.fail(f"`mdstack {' '.join(argv)}` never parsed its arguments")

    return parse
