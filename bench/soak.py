"""The soak benchmark: the whole stack at a steady rate, sampled until every curve shows whether it levels off.

    python -m bench.soak --minutes 30 --tps 2000 [--trade-tps 5] [--batch 10] [--sample-s 5] [--json PATH]
        [--env DEDUP_WINDOW_S=60 --env RTTM_RETENTION_S=120 ...]

Starts the API, two workers, the flusher and the gateway (REDIS_URL / PG_URL,
or embedded servers when unset; a scratch database and key prefix either
way), one SSE listener on the gateway, and the feeder at the open-loop rate.
Every `--sample-s` it samples (bench/soak_probe.py) Redis used memory and
bytes + keys per key family, RQ's keys of its queue, the RSS of every
process, every Postgres table and partition, the backlog and the refusals.
After the feeder stops and the stack has drained it checks that every
acknowledged tick and event is in Postgres once, then prints a table
(bench/soak_report.py): per family the bytes at the end, the slope over the
last half, the bytes per item measured beside the declared ones, and the
projected steady state at the run's rate, at the demo rate and at 1,000
ticks/s; RSS and Postgres sizes with their slopes. Everything goes to JSON.

`--env NAME=VALUE` sets a setting for every process (and for the
projection): shorten the windows so a short run reaches its plateaus.
A key of no family, or a key of a TTL-bound family without a TTL, is a
problem: reported loudly, and the exit status is 1, as it is for a lost tick.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
from pydantic import ValidationError

from bench import soak_probe, soak_report
from harness.stack import Stack, bench_settings
from services.common.keys import DEMO_RATES, Rates
from services.common.settings import Settings
from services.feeder.settings import FeederSettings, non_negative, positive  # the feeder's own value checks

N = TypeVar("N", int, float)

DRAIN_TIMEOUT_S = 120.0  # after the feeder stops: until Postgres and the queue have caught up
WORKERS = 2
# Set by the bench itself: the run's servers, names and ports keep it apart from anything else.
RESERVED = {
    "REDIS_URL",
    "PG_URL",
    "KEY_PREFIX",
    "QUEUE_NAME",
    "PUBSUB_CHANNEL",
    "API_PORT",
    "GATEWAY_PORT",
    "TARGET_URL",
}


def checked(kind: Callable[[str], N], check: Callable[[N], N]) -> Callable[[str], N]:
    """An argparse type: `kind(text)` passed through one of the feeder's checks."""

    def parse(text: str) -> N:
        try:
            return check(kind(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


POSITIVE_FLOAT = checked(float, positive)
POSITIVE_INT = checked(int, positive)
NON_NEGATIVE = checked(float, non_negative)


def setting(text: str) -> tuple[str, str]:
    """`NAME=VALUE` of a setting the processes read, checked like the services would check it."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    feeder = FeederSettings.env_names()
    if name not in Settings.model_fields and name not in feeder:
        raise argparse.ArgumentTypeError(f"{name} is not a setting (services/common/settings.py, feeder/settings.py)")
    if name in RESERVED:
        raise argparse.ArgumentTypeError(f"{name} is set by the bench for each run")
    try:
        if name in feeder:
            FeederSettings(**{feeder[name]: value})
        else:
            Settings(**{name: value})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{name}={value}: {exc.errors()[0]['msg']}") from None
    return name, value


def run_settings(env: dict[str, str]) -> Settings:
    """The settings the processes run with: those of their environment."""
    return Settings(**{k: v for k, v in env.items() if k in Settings.model_fields})  # type: ignore[arg-type]


def run_rates(summary: dict[str, Any]) -> Rates:
    """The rate the stack was fed at, as acknowledged (the target may not have been met)."""
    elapsed = summary["elapsed_s"] or 1.0
    events = sum(kind["acknowledged"] for kind in summary["trade_events"].values())
    trades = summary["trades"].get("started", 0) if summary["trades"] else 0
    return Rates(ticks=summary["acknowledged"] / elapsed, events=events / elapsed, trades=trades / elapsed,
                 symbols=len(summary["symbols"]))  # fmt: skip


def drain(probe: soak_probe.Probe, accepted: int) -> float | None:
    """Seconds until nothing waits for Postgres or a worker and md_ticks holds as many ticks as were accepted."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        try:
            api = soak_probe.api_sample(probe.api)
            queue = api["queue"]
            if api["unflushed_items"] == 0 and queue["queued"] == 0 and queue["started"] == 0:
                row = probe.pg.execute("SELECT count(*) FROM md_ticks").fetchone()
                if row is not None and row[0] >= accepted:
                    return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return None


def feed(args: argparse.Namespace, stack: Stack, probe: soak_probe.Probe) -> tuple[list[dict[str, Any]], int, float]:
    """Run the feeder for the whole run, sampling every --sample-s: the samples, the feeder's exit status and
    when it started (time.monotonic())."""
    workdir = stack.log_dir
    feeder = stack.start(
        "feeder", "--duration", str(args.minutes * 60), "--tps", str(args.tps), "--trade-tps", str(args.trade_tps),
        "--batch", str(args.batch), "--quiet", "--summary-json", str(workdir / "summary.json"),
        "--acked-ids", str(workdir / "acked.txt"), "--acked-events", str(workdir / "acked-events.txt"),
    )  # fmt: skip
    started = time.monotonic()
    samples, next_at = [], started
    while feeder.poll() is None:
        samples.append(probe.sample(time.monotonic() - started, "feed"))
        next_at += args.sample_s
        try:
            feeder.wait(max(0.0, next_at - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    return samples, int(feeder.returncode), started


def run(args: argparse.Namespace, settings: Settings, workdir: Path) -> dict[str, Any]:
    stack = Stack(settings, workdir)
    stack.env.update(args.env)
    settings = run_settings(stack.env)
    stack.settings = settings
    client = redis.Redis.from_url(settings.redis_url)
    baseline = int(client.info("memory")["used_memory"])
    client.close()
    try:
        try:
            stack.up(WORKERS, health=True)
        except TimeoutError:
            sys.stderr.write(stack.logs() + "\n")
            raise
        with soak_probe.SseListener(stack.gateway_url) as listener:
            probe = soak_probe.Probe(stack, listener)
            try:
                samples, feeder_status, started = feed(args, stack, probe)
                if not (workdir / "summary.json").exists():
                    raise RuntimeError(f"the feeder exited {feeder_status} without a summary:\n{stack.logs()}")
                summary = json.loads((workdir / "summary.json").read_text())
                drained = drain(probe, summary["accepted"])
                samples.append(probe.sample(time.monotonic() - started, "drained"))
                conn = probe.pg
                ticks = soak_probe.tick_delivery(conn, workdir / "acked.txt")
                events = soak_probe.event_delivery(conn, workdir / "acked-events.txt")
                tables = {rel["table"] for rel in samples[-1]["postgres"].values()}
                rows = soak_probe.row_counts(conn, tables)
            finally:
                probe.close()
            sse = {"events": listener.events, "reconnects": listener.reconnects}
    finally:
        stack.stop_all()
    rates = run_rates(summary)
    analysis = soak_report.analyse(samples, settings, rates, rows)
    last_api: dict[str, Any] = next((s["api"] for s in reversed(samples) if "error" not in s["api"]), {})
    result: dict[str, Any] = {
        "args": {k: v for k, v in vars(args).items() if k != "json"} | {"env": dict(args.env)},
        "rates": {"run": vars(rates), "demo": vars(DEMO_RATES), "ticks_1000": vars(soak_report.RATES_1K)},
        "settings": {k: getattr(settings, k) for k in _setting_names()},
        "redis_baseline_used_memory": baseline,
        "feeder": {"exit_status": feeder_status} | {k: summary[k] for k in _FEEDER_KEYS},
        "delivery": {"ticks": ticks, "events": events, "drain_s": drained},
        "refused_answers": last_api.get("refused_answers", {}),
        "refused_items": last_api.get("refused_items", {}),
        "sse": sse,
        "analysis": analysis,
        "problems": soak_report.problems(samples, analysis["families"]) + _lost(ticks, events, drained),
        "samples": samples,
    }
    return result


_FEEDER_KEYS = ("sent", "acknowledged", "accepted", "duplicates", "rejected", "errors", "errors_by_cause", "retries",
                "behind", "missed", "elapsed_s", "achieved_tps", "ack_latency_p99_ms", "trades")  # fmt: skip


def _setting_names() -> list[str]:
    """The settings the key families are bounded by, and the flush interval they depend on."""
    from services.common.keys import FAMILIES

    names = {n.strip() for f in FAMILIES for n in f.setting.split(",")} | {"FLUSH_INTERVAL_MS"}
    return sorted(n for n in names if n in Settings.model_fields)


def _lost(ticks: dict[str, int], events: dict[str, dict[str, int]], drained: float | None) -> list[str]:
    out = []
    if drained is None:
        out.append(f"the stack had not drained {DRAIN_TIMEOUT_S:.0f} s after the feeder stopped")
    if ticks["missing"] or ticks["duplicates"]:
        out.append(f"ticks: {ticks['missing']} acknowledged but not in Postgres, {ticks['duplicates']} duplicated")
    out += [
        f"{kind} events: {e['missing']} acknowledged but not in Postgres" for kind, e in events.items() if e["missing"]
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=POSITIVE_FLOAT, default=5.0, help="how long the feeder runs")
    parser.add_argument("--tps", type=POSITIVE_FLOAT, default=DEMO_RATES.ticks, help="ticks per second, open loop")
    parser.add_argument("--trade-tps", type=NON_NEGATIVE, default=DEMO_RATES.trades, help="trades per second (0: off)")
    parser.add_argument("--batch", type=POSITIVE_INT, default=10, help="ticks per POST (the demo feeder posts 1)")
    parser.add_argument("--sample-s", type=POSITIVE_FLOAT, default=5.0, help="seconds between samples")
    parser.add_argument("--env", type=setting, action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every process and the projection (repeatable)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=Path("soak-results.json"), help="where the JSON goes")
    args = parser.parse_args(argv)
    args.env = dict(args.env)
    with tempfile.TemporaryDirectory(prefix="mdstack-soak-") as tmp, bench_settings(Path(tmp), "soak") as settings:
        result = run(args, settings, Path(tmp))
    args.json.write_text(json.dumps(result, indent=2, default=str))
    sys.stdout.write(soak_report.table(result))
    sys.stdout.write(f"JSON: {args.json}\n")
    for problem in result["problems"]:
        sys.stderr.write(f"!! soak: {problem}\n")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
