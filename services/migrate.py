"""`mdstack migrate`: apply the Alembic migrations to PG_URL."""

from __future__ import annotations

import argparse

from services.common.db import migrate
from services.common.logging import configure_logging, get_logger
from services.common.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="mdstack migrate", description=__doc__).parse_args(argv)
    settings = load_settings(SERVICE_NAME="migrate")
    configure_logging("migrate", settings.LOG_LEVEL)
    migrate(settings)
    get_logger(__name__).info("migrate.done")
    return 0
