"""`mdstack up`'s status line: every UP_STATUS_S, what the stack is doing, read from the API.

    ingest 49.8 ticks/s 37.5 events/s | backlog 12 items, 0 jobs | redis 6.1 of 38.2 MiB projected | refused none

Rates are the growth of the accepted counters (GET /system) between two
lines; backlog is `unflushed_items` and the RQ jobs queued; memory is Redis'
used_memory against the steady state `GET /system` projects at the current
rate; refused counts the ingest answers 429 / 503 / 422 (the API's /metrics)
since the line before. It runs as one more process beside the services, so
honcho prefixes and interleaves its lines, and it never exits on an error:
an API that is still starting, or gone, is a status line of its own.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.settings import load_settings

REFUSAL_STATUSES = ("429", "503", "422")  # back-pressure, backlog/queue full or Redis away, bad input or symbol cap
MIB = 1024 * 1024


@dataclass(frozen=True)
class Reading:
    at: float  # time.monotonic() when read
    system: dict[str, Any]  # GET /system
    refused: dict[str, int]  # ingest answers by refusal status since the API started


def refusals(metrics_text: str) -> dict[str, int]:
    """Ingest answers with a refusal status, from the API's Prometheus text."""
    counts = dict.fromkeys(REFUSAL_STATUSES, 0)
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            status = sample.labels.get("status", "")
            if (
                sample.name == "mdstack_http_requests_total"
                and sample.labels.get("route", "").startswith("/ingest/")
                and status in counts
            ):
                counts[status] += int(sample.value)
    return counts


def read(client: httpx.Client) -> Reading:
    system = client.get("/system").raise_for_status().json()
    metrics = client.get("/metrics").raise_for_status().text
    return Reading(time.monotonic(), system, refusals(metrics))


def status_line(now: Reading, before: Reading | None) -> str:
    """One line for people; `before` None (the first line): the API's own rates and refusals since its start."""
    system = now.system
    ticks_s, events_s = _rates(now, before)
    refused = now.refused
    if before is not None and all(now.refused[s] >= before.refused[s] for s in REFUSAL_STATUSES):
        refused = {s: now.refused[s] - before.refused[s] for s in REFUSAL_STATUSES}  # else the API restarted
    redis = system["redis"]
    parts = [
        f"ingest {ticks_s:.1f} ticks/s {events_s:.1f} events/s",
        f"backlog {system['unflushed_items']} items, {system['queue']['queued']} jobs",
        f"redis {redis['used_memory_bytes'] / MIB:.1f} of {redis['projected_bytes'] / MIB:.1f} MiB projected",
        "refused " + (" ".join(f"{s}={n}" for s, n in refused.items() if n) or "none"),
    ]
    return " | ".join(parts)


def _rates(now: Reading, before: Reading | None) -> tuple[float, float]:
    """(ticks/s, other events/s) between two readings."""
    if before is None or now.at <= before.at:
        rates = now.system["redis"]["rates"]
        return float(rates["ticks_per_s"]), float(rates["events_per_s"])
    elapsed = now.at - before.at
    was: dict[str, int] = before.system["ingest"]["accepted_by_kind"]
    grown = {k: max(0, v - was.get(k, 0)) for k, v in now.system["ingest"]["accepted_by_kind"].items()}
    ticks = grown.pop("tick", 0)
    return ticks / elapsed, sum(grown.values()) / elapsed


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # Ctrl-C reaches every process of the terminal: stop without a traceback


def main() -> int:
    settings = load_settings(SERVICE_NAME="status")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    headers = {"x-api-key": settings.API_KEY} if settings.API_KEY else {}
    before: Reading | None = None
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=5) as client:
        while True:
            time.sleep(settings.UP_STATUS_S)
            try:
                now = read(client)
                line = status_line(now, before)
                before = now
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                line = f"API {settings.api_url} not answering ({type(exc).__name__}: {exc})"
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
