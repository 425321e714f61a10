"""`mdstack up`: the whole stack on this machine, supervised by honcho.

With REDIS_URL / PG_URL unset it first starts the embedded redis-server and
PostgreSQL under STATE_DIR (and writes their URLs to STATE_DIR/servers.json
so `mdstack <service>` run by hand joins them), applies the migrations, then
runs the API, N workers, the flusher, the gateway and a feeder, and every
UP_STATUS_S a status line (services/up_status.py). On a terminal the services
log readable lines (LOG_FORMAT=console), else JSON. Ctrl-C stops everything,
the embedded servers last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from honcho.manager import Manager
from honcho.printer import Printer
from pydantic import ValidationError

from services.common.db import migrate
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.logging import configure_logging, get_logger, use_console
from services.common.settings import SERVERS_FILE, get_settings
from services.feeder.settings import FeederSettings, explain

log = get_logger(__name__)
METRICS_BASE_PORT = 8010  # flusher /metrics on the base port, worker i on base + i, then the feeder


def main(argv: list[str] | None = None) -> int:
    settings = get_settings(SERVICE_NAME="up")
    parser = argparse.ArgumentParser(prog="mdstack up", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-feeder", action="store_true", help="run without the simulated feeder")
    parser.add_argument("--redis-port", type=int, default=6390, help="embedded redis-server port (0: any free)")
    parser.add_argument(
        "--metrics-base-port", type=int, default=METRICS_BASE_PORT, help="flusher/worker /metrics ports (0: off)"
    )
    args = parser.parse_args(argv)
    configure_logging("up", settings.LOG_LEVEL, settings.LOG_FORMAT)
    try:
        knobs = FeederSettings()  # the feeder's env vars, refused here in one line rather than by the feeder later
    except ValidationError as exc:
        sys.stderr.write(f"mdstack up: {explain(exc)}\n")
        return 2

    state = Path(settings.STATE_DIR).resolve()
    state.mkdir(parents=True, exist_ok=True)  # a fresh checkout on given servers has none: no embedded server made it
    embedded: list[EmbeddedRedis | EmbeddedPostgres] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOG_FORMAT=child_log_format(settings.LOG_FORMAT, sys.stdout))
    try:
        if not settings.REDIS_URL:
            server = EmbeddedRedis(state, args.redis_port or None)
            embedded.append(server)
            env["REDIS_URL"] = server.start()
        if not settings.PG_URL:
            pg = EmbeddedPostgres(state)
            embedded.append(pg)
            env["PG_URL"] = pg.start()
        settings = get_settings(REDIS_URL=env.get("REDIS_URL"), PG_URL=env.get("PG_URL"))
        (state / SERVERS_FILE).write_text(json.dumps({"REDIS_URL": settings.REDIS_URL, "PG_URL": settings.PG_URL}))
        migrate(settings)
        log.info("up.migrated")

        manager = Manager(Printer(sys.stdout))
        py = sys.executable
        # The API and the gateway keep /metrics and /docs on their own ports here (the banner's URLs).
        web_env = {k: v for k, v in env.items() if k != "METRICS_PORT"}
        manager.add_process("api", f"{py} -m services.orchestrator_api", env=web_env)
        base = args.metrics_base_port
        for i in range(1, args.workers + 1):
            port = base + i if base else 0
            manager.add_process(f"worker.{i}", f"{py} -m services.consumers --metrics-port {port}", env=env)
        manager.add_process(
            "flusher",
            f"{py} -m services.flusher --metrics-port {base}",
            env=dict(env, FLUSHER_NAME="flusher-1"),
        )
        manager.add_process("gateway", f"{py} -m services.realtime_gateway", env=web_env)
        if not args.no_feeder:
            port = base + args.workers + 1 if base else 0
            manager.add_process("feeder", f"{py} -m services.feeder --metrics-port {port}", env=env)
        if settings.UP_STATUS_S > 0:
            manager.add_process("status", f"{py} -m services.up_status", env=env)
        sys.stdout.write(_banner(settings, knobs, args.workers, not args.no_feeder, base))
        sys.stdout.flush()
        manager.loop()
        return int(manager.returncode or 0)
    finally:
        for server in reversed(embedded):
            server.stop()
        (state / SERVERS_FILE).unlink(missing_ok=True)


def child_log_format(log_format: str, stdout: TextIO) -> str:
    """The services write to honcho's pipes, never a terminal: `auto` is decided here, by up's own stdout."""
    return "console" if use_console(log_format, stdout) else "json"


def _banner(settings, knobs: FeederSettings, workers: int, feeder: bool, metrics_base: int) -> str:  # type: ignore[no-untyped-def]
    api = f"http://{settings.API_HOST}:{settings.API_PORT}"
    feed = f"{knobs.symbols} at {knobs.tps:g} ticks/s, {knobs.trade_tps:g} trades/s"
    gateway = f"http://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}"
    lines = [
        "",
        "mdstack is starting:",
        f"  dashboard       {gateway}/",
        f"  API docs        {api}/docs",
        f"  symbols         {api}/symbols",
        f"  live stream     curl -N {gateway}/stream",
        f"  API metrics     {api}/metrics",
        f"  workers         {workers}"
        + (f" (/metrics on :{metrics_base + 1}..:{metrics_base + workers})" if metrics_base else ""),
        f"  flusher metrics http://127.0.0.1:{metrics_base}/metrics" if metrics_base else "  flusher metrics off",
        f"  feeder          {feed if feeder else 'off'}",
        f"  pipeline (RTTM) {api}/rttm/metrics",
        f"  status line     every {settings.UP_STATUS_S:g} s" if settings.UP_STATUS_S > 0 else "  status line     off",
    ]
    if settings.demo_secrets_in_use:
        lines += [
            "",
            "  !! DEMO CREDENTIALS IN USE (" + ", ".join(settings.demo_secrets_in_use) + ").",
            f"  !! Ingest Basic Auth is {settings.INGEST_USERNAME}:{settings.INGEST_PASSWORD};",
            "  !! set real secrets for anything but a local demo.",
        ]
    lines += ["", "Ctrl-C stops everything.", "", ""]
    return "\n".join(lines)
