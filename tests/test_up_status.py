"""`mdstack up`'s status line: what it says, from GET /system and the API's /metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest

from services.up_status import Reading, refusals, status_line

MIB = 1024 * 1024


def make_system(
    *, accepted: dict[str, int], unflushed: int = 0, queued: int = 0, used: int = 0, projected: int = 0
) -> dict[str, Any]:
    """The parts of a GET /system answer the status line reads."""
    return {
        "queue": {"queued": queued, "started": 0, "failed": 0, "scheduled": 0},
        "unflushed_items": unflushed,
        "ingest": {"accepted_total": sum(accepted.values()), "accepted_by_kind": accepted},
        "redis": {
            "used_memory_bytes": used,
            "projected_bytes": projected,
            "rates": {"ticks_per_s": 12.25, "events_per_s": 3.0, "trades_per_s": 0.5, "symbols": 5},
        },
    }


def metrics_text(answers: dict[tuple[str, str], int]) -> str:
    """Real Prometheus text with mdstack_http_requests_total by (route, status), as the API renders it."""
    registry = CollectorRegistry()
    requests = Counter("mdstack_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    for (route, status), count in answers.items():
        requests.labels("POST", route, status).inc(count)
    return generate_latest(registry).decode()


def test_refusals_count_ingest_answers_429_503_422_only() -> None:
    text = metrics_text(
        {
            ("/ingest/ticks", "200"): 900,
            ("/ingest/ticks", "429"): 3,
            ("/ingest/tick", "429"): 2,
            ("/ingest/trade-events", "503"): 1,
            ("/ingest/tick", "422"): 7,
            ("/symbols/{symbol}/history", "422"): 40,  # a bad read is not a refused item
            ("/ingest/tick", "401"): 5,
        }
    )
    assert refusals(text) == {"429": 5, "503": 1, "422": 7}


def test_status_line_gives_rates_backlog_memory_and_refusals_since_the_line_before() -> None:
    before = Reading(
        100.0, make_system(accepted={"tick": 1000, "trade": 100, "queue": 20}), {"429": 4, "503": 0, "422": 1}
    )
    now = Reading(
        105.0,
        make_system(
            accepted={"tick": 1250, "trade": 130, "queue": 25, "dlq": 2},
            unflushed=340,
            queued=7,
            used=int(6.25 * MIB),
            projected=int(38.5 * MIB),
        ),
        {"429": 10, "503": 0, "422": 3},
    )
    assert status_line(now, before) == (
        "ingest 50.0 ticks/s 7.4 events/s | backlog 340 items, 7 jobs | redis 6.2 of 38.5 MiB projected"
        " | refused 429=6 422=2"
    )


def test_first_status_line_takes_the_apis_rates_and_says_when_nothing_was_refused() -> None:
    now = Reading(5.0, make_system(accepted={"tick": 10}, used=MIB, projected=2 * MIB), {"429": 0, "503": 0, "422": 0})
    assert status_line(now, None) == (
        "ingest 12.2 ticks/s 3.0 events/s | backlog 0 items, 0 jobs | redis 1.0 of 2.0 MiB projected | refused none"
    )


def test_counters_that_went_back_mean_a_restarted_api_and_count_from_zero() -> None:
    before = Reading(0.0, make_system(accepted={"tick": 5000}), {"429": 50, "503": 9, "422": 0})
    now = Reading(10.0, make_system(accepted={"tick": 100}), {"429": 2, "503": 0, "422": 0})
    assert status_line(now, before).endswith("| refused 429=2")
    assert status_line(now, before).startswith("ingest 0.0 ticks/s 0.0 events/s |")
