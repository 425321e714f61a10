"""The Dockerfiles and .dockerignore against the code: stages, user, environment, healthcheck, the dashboard.

Offline: the files are parsed and compared with the code (tests/deploy/files.py)."""

from __future__ import annotations

import json
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest

from services.cli import COMMANDS
from services.common.settings import Settings
from tests.deploy.files import (
    BUILD_VARS,
    IMAGE_VARS,
    ROOT,
    SETTINGS,
    dockerfile,
    make_recipe,
    npm_commands,
    package_scripts,
    readme_commands,
    routes,
    shell_commands,
    url_of,
    write_config_keys,
    write_config_vars,
)

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
