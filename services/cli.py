"""`mdstack <command>`: one console script for every service."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "up": ("services.up", "the whole stack locally (embedded Redis/Postgres when no URLs are set)"),
    "api": ("services.orchestrator_api.__main__", "ingest + read API (port 8000)"),
    "worker": ("services.consumers.__main__", "RQ worker: calc-a + calc-b"),
    "flusher": ("services.flusher.__main__", "batches ticks into Postgres"),
    "gateway": ("services.realtime_gateway.__main__", "SSE fan-out (port 8001)"),
    "kafka-consumer": ("services.kafka_consumer.__main__", "the rttm.* Kafka topics into the same ingest path"),
    "feeder": ("services.feeder.__main__", "market ticks and trade-pipeline events simulator"),
    "migrate": ("services.migrate", "apply the database migrations"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: mdstack <command> [options]\n\ncommands:\n{rows}\n\n`mdstack <command> -h` for its options.\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        sys.stdout.write(usage())
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
