"""`mdstack gateway` / `python -m services.realtime_gateway`: the SSE gateway on port 8001."""

from __future__ import annotations

import argparse

from services.common.logging import configure_logging
from services.common.metrics_port import serve
from services.common.settings import load_settings
from services.realtime_gateway.app import create_app


def main(argv: list[str] | None = None) -> int:
    settings = load_settings(SERVICE_NAME="gateway")
    parser = argparse.ArgumentParser(prog="mdstack gateway", description=__doc__)
    parser.add_argument("--host", default=settings.GATEWAY_HOST)
    parser.add_argument("--port", type=int, default=settings.GATEWAY_PORT)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=settings.METRICS_PORT,
        help="serve /metrics and the docs on this port only (0: on the public port)",
    )
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"METRICS_PORT": args.metrics_port})
    configure_logging("gateway", settings.LOG_LEVEL)
    # proxy_headers off: the app resolves X-Forwarded-For itself, from TRUSTED_PROXIES only (limits.py).
    serve(create_app(settings), args.host, args.port, args.metrics_port, proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
