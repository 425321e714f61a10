"""Fixtures: the real API on a free port, and feeder processes with the test's credentials."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.servers import serve
from services.common.settings import Settings
from services.orchestrator_api.app import create_app
from tests.feeder.process import FeederProcess


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `feeder` fixture below starts feeder processes (the hook sees every item of the run: ours only)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and "feeder" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    """The real orchestrator API on a free port, in a background thread."""
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def feeder(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., FeederProcess]]:
    """Starts feeder processes with the test's ingest credentials (overridable by env keywords)."""
    started: list[FeederProcess] = []

    def start(*args: str, **env_overrides: str) -> FeederProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDER_", "INGEST_", "TPS", "SYMBOLS"))}
        env.update(
            INGEST_USERNAME=settings.INGEST_USERNAME,
            INGEST_PASSWORD=settings.INGEST_PASSWORD,
            SYMBOLS="BTCUSDT,ETHUSDT,SOLUSDT,XAUUSD,EURUSD",
            STATE_DIR=str(tmp_path / "state"),  # never join a developer's running `mdstack up`
        )
        env.update(env_overrides)
        workdir = tmp_path / f"feeder{len(started)}"
        workdir.mkdir()
        process = FeederProcess(list(args), env, workdir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
