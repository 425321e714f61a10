"""`mdstack api` / `python -m services.orchestrator_api`: the API on port 8000."""

from __future__ import annotations

import argparse

import uvicorn

from services.common.logging import configure_logging
from services.common.settings import load_settings
from services.orchestrator_api.app import create_app


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="api")
    parser = argparse.ArgumentParser(prog="mdstack api", description=__doc__)
    parser.add_argument("--host", default=settings.API_HOST)
    parser.add_argument("--port", type=int, default=settings.API_PORT)
    args = parser.parse_args(argv)
    configure_logging("api", settings.LOG_LEVEL)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
