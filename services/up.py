"""`mdstack up`: the whole stack on this machine, supervised by honcho.

With REDIS_URL / PG_URL unset it first starts the embedded redis-server and
PostgreSQL under STATE_DIR (and writes their URLs to STATE_DIR/servers.json
so `mdstack <service>` run by hand joins them), applies the migrations, then
runs the API, N workers, the flusher, the gateway and a feeder. Ctrl-C stops
everything, the embedded servers last.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

from services.common.db import migrate
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.logging import configure_logging, get_logger
from services.common.settings import SERVERS_FILE, get_settings

log = get_logger(__name__)
WORKER_METRICS_BASE = 8010  # worker i serves /metrics on 8010 + i
FLUSHER_METRICS_PORT = 8020


def main(argv: list[str] | None = None) -> int:
    settings = get_settings(SERVICE_NAME="up")
    parser = argparse.ArgumentParser(prog="mdstack up", description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-feeder", action="store_true", help="run without the simulated feeder")
    parser.add_argument("--redis-port", type=int, default=6390, help="port of the embedded redis-server")
    args = parser.parse_args(argv)
    configure_logging("up", settings.LOG_LEVEL)

    state = Path(settings.STATE_DIR).resolve()
    embedded: list[EmbeddedRedis | EmbeddedPostgres] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        if not settings.REDIS_URL:
            server = EmbeddedRedis(state, args.redis_port)
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
        manager.add_process("api", f"{py} -m services.orchestrator_api", env=env)
        for i in range(args.workers):
            port = WORKER_METRICS_BASE + i
            manager.add_process(f"worker.{i + 1}", f"{py} -m services.consumers --metrics-port {port}", env=env)
        manager.add_process(
            "flusher",
            f"{py} -m services.orchestrator_api.flusher_main --metrics-port {FLUSHER_METRICS_PORT}",
            env=dict(env, FLUSHER_NAME="flusher-1"),
        )
        manager.add_process("gateway", f"{py} -m services.realtime_gateway", env=env)
        if not args.no_feeder:
            manager.add_process("feeder", f"{py} -m services.feeder", env=env)
        sys.stdout.write(_banner(settings, args.workers, not args.no_feeder))
        sys.stdout.flush()
        manager.loop()
        return int(manager.returncode or 0)
    finally:
        for server in reversed(embedded):
            server.stop()
        (state / SERVERS_FILE).unlink(missing_ok=True)


def _banner(settings, workers: int, feeder: bool) -> str:  # type: ignore[no-untyped-def]
    api = f"http://{settings.API_HOST}:{settings.API_PORT}"
    gateway = f"http://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}"
    lines = [
        "",
        "mdstack is starting:",
        f"  API docs        {api}/docs",
        f"  symbols         {api}/symbols",
        f"  live stream     curl -N {gateway}/stream",
        f"  API metrics     {api}/metrics",
        f"  workers         {workers} (metrics on :{WORKER_METRICS_BASE}..:{WORKER_METRICS_BASE + workers - 1})",
        f"  flusher metrics http://127.0.0.1:{FLUSHER_METRICS_PORT}/metrics",
        f"  feeder          {'on: ' + settings.SYMBOLS + f' at {settings.TPS:g} ticks/s' if feeder else 'off'}",
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
