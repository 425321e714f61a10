""".github/workflows/ci.yml against the Makefile and .ci/run: jobs, commands, images.

Offline: the files are parsed and compared with the code (tests/deploy/files.py)."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from services.cli import COMMANDS
from tests.deploy.files import (
    NEEDS,
    ROOT,
    SETTINGS,
    dockerfile,
    load_yaml,
    make_recipe,
)

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
