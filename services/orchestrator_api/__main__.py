"""`mdstack api` / `python -m services.orchestrator_api`: the API on port 8000."""

from __future__ import annotations

import argparse

from services.common.logging import configure_logging
from services.common.metrics_port import serve
from services.common.settings import load_settings
from services.orchestrator_api.app import create_app


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="api")
    parser = argparse.ArgumentParser(prog="mdstack api", description=__doc__)
    parser.add_argument("--host", default=settings.API_HOST)
    parser.add_argument("--port", type=int, default=settings.API_PORT)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=settings.METRICS_PORT,
        help="serve /metrics and the docs on this port only (0: on the public port)",
    )
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"METRICS_PORT": args.metrics_port})
    configure_logging("api", settings.LOG_LEVEL)
    serve(create_app(settings), args.host, args.port, args.metrics_port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
