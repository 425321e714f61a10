"""A bounded run of the trade-pipeline simulation through the real stack, and what the monitor saw.

    python -m bench.pipeline_run --duration 30 --trade-tps 20 [--seed 7] [--json out.json]

Starts API, two workers, flusher and gateway (REDIS_URL / PG_URL or embedded
servers; scratch database and key prefix), runs the feeder with trades, waits
until every acknowledged event is in Postgres and the stuck threshold has
passed, then reports events sent/acknowledged per kind, rows per table, an
excerpt of the metrics snapshot and the alerts seen. Traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from harness.stack import Stack, bench_settings, report
from services.common.settings import Settings

TABLES = {
    "trade": "rttm_trade_events",
    "queue": "rttm_queue_metrics",
    "dlq": "rttm_dlq_events",
    "error": "rttm_error_events",
    "log": "rttm_parsed_logs",
}
STUCK_AFTER_S = 5
DRAIN_TIMEOUT_S = 60.0


def counts(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return {kind: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for kind, table in TABLES.items()}  # type: ignore[index]


async def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    stack.env.update(RTTM_STUCK_AFTER_S=str(STUCK_AFTER_S))
    try:
        stack.up()
        summary_file = workdir / "summary.json"
        feeder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.feeder", "--duration", str(args.duration), "--tps", "10",
            "--trade-tps", str(args.trade_tps), "--seed", str(args.seed), "--quiet",
            "--summary-json", str(summary_file), env=stack.env, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await feeder.wait()
        summary = json.loads(summary_file.read_text())
        acked = {kind: summary["trade_events"][kind]["acknowledged"] for kind in TABLES}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while counts(settings) != acked and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(STUCK_AFTER_S + 2)  # unfinished trades become stuck
        async with httpx.AsyncClient(base_url=stack.api_url) as client:
            snap = (await client.get("/rttm/metrics")).json()
            alerts = (await client.get("/rttm/alerts")).json()
        return {
            "duration_s": args.duration,
            "trade_tps": args.trade_tps,
            "seed": args.seed,
            "trades": summary["trades"],
            "events_sent": {kind: summary["trade_events"][kind]["sent"] for kind in TABLES},
            "events_acknowledged": acked,
            "rows_persisted": counts(settings),
            "snapshot": {
                "tps_by_service": snap["tps"]["by_service"],
                "completed": snap["trades"]["completed"],
                "failed": snap["trades"]["failed"],
                "latency_ms": snap["latency_ms"],
                "pipeline": {k: snap["pipeline"][k] for k in ("max_lag", "total_lag", "by_service")},
                "dlq": snap["dlq"],
                "errors": {k: snap["errors"][k] for k in ("in_window", "by_type")},
                "stuck": snap["stuck"]["count"],
            },
            "alerts_seen": [
                {"rule": a["rule"], "message": a["message"], "resolved": a["resolved_at"] is not None}
                for a in alerts["history"]
            ],
        }
    finally:
        stack.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_run", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--trade-tps", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mdstack-bench-") as tmp:
        with bench_settings(Path(tmp)) as settings:
            result = asyncio.run(run(args, settings, Path(tmp)))
    report(result, args.json)
    return 0 if result["rows_persisted"] == result["events_acknowledged"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
