"""RTTM ingest endpoints and the /rttm read API, through the real path: API -> worker -> ticker/flusher."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from services.common.settings import Settings
from services.consumers import context
from services.consumers.rttm.ticker import Ticker
from services.consumers.worker import make_worker
from services.flusher.writer import Flusher

pytestmark = pytest.mark.anyio
STAGES = [
    ("simulation-service", "TRADE_CREATED"),
    ("trade-capture-service", "TRADE_CAPTURED"),
    ("validation-service", "VALIDATION_SUCCESS"),
    ("pms-core-service", "POSITION_UPDATED"),
    ("analytics-service", "ANALYTICS_COMPUTED"),
    ("leaderboard-service", "LEADERBOARD_UPDATED"),
]


def now_ms() -> int:
    return int(time.time() * 1000)


def trade_events(trade_id: str, start: int, stages: int = 6, step: int = 20) -> list[dict[str, Any]]:
    return [
        {
            "event_id": uuid.uuid4().hex,
            "trade_id": trade_id,
            "service_name": service,
            "event_type": type_,
            "event_status": "SUCCESS",
            "source_queue": None if i == 0 else f"q{i}",
            "target_queue": f"q{i + 1}",
            "topic_name": None if i == 0 else f"q{i}",
            "partition": None if i == 0 else 0,
            "offset": None if i == 0 else 100 + i,
            "event_time": start + i * step,
            "message": f"{type_.lower()} ok",
        }
        for i, (service, type_) in enumerate(STAGES[:stages])
    ]


def process(settings: Settings) -> dict[str, Any]:
    """What the stack does in the background: worker jobs, one ticker round, one flush."""
    settings.RTTM_FINALIZE_GRACE_S = 0  # measure terminal trades at once
    make_worker(context.configure(settings)).work(burst=True)
    client = redis.Redis.from_url(settings.redis_url)
    snap = Ticker(settings, client, "t").tick(now_ms())
    settings.FLUSH_INTERVAL_MS = 50
    f = Flusher(settings, client, "f")
    f.ensure_group()
    f.flush_once()
    f.close()
    client.close()
    assert snap is not None
    return snap


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/ingest/queue-metrics",
            {
                "service_name": "validation-service",
                "topic_name": "trade-input",
                "partition": 2,
                "produced_offset": 105000,
                "consumed_offset": 102345,
            },
        ),  # fmt: skip
        (
            "/ingest/dlq-events",
            {
                "trade_id": "T124",
                "service_name": "validation-service",
                "topic_name": "trade-dlq",
                "reason": "Schema validation failed",
            },
        ),  # fmt: skip
        (
            "/ingest/error-events",
            {
                "trade_id": "T125",
                "service_name": "pms-core",
                "error_type": "DB_TIMEOUT",
                "error_message": "Timeout while updating position",
            },
        ),  # fmt: skip
        (
            "/ingest/log-events",
            {
                "service_name": "analytics-service",
                "log_level": "WARN",
                "log_category": "PROCESSING_DELAY",
                "trade_id": "T126",
                "message": "Analytics computation exceeded SLA",
            },
        ),  # fmt: skip
    ],
)
async def test_seed_examples_are_accepted_once_without_an_event_id(
    api: httpx.AsyncClient, path: str, body: dict
) -> None:
    time_field = "snapshot_time" if "queue" in path else "event_time"
    item = {**body, time_field: "2026-01-02T11:05:50Z"}

    first = await api.post(path, json=item)
    again = await api.post(path, json=[item])  # a replay: same content, same derived key

    assert first.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


async def test_trade_events_dedup_by_topic_partition_offset(api: httpx.AsyncClient) -> None:
    [event] = trade_events("T1", now_ms(), stages=3)[2:]
    event.pop("event_id")
    first = await api.post("/ingest/trade-events", json=event)
    redelivered = await api.post("/ingest/trade-events", json={**event, "message": "redelivered"})

    assert first.json()["accepted"] == 1
    assert redelivered.json() == {"accepted": 0, "duplicates": 1, "rejected": []}


async def test_invalid_rttm_items_are_named_by_index_and_field(api: httpx.AsyncClient) -> None:
    good = trade_events("T2", now_ms(), stages=1)[0]
    bad = [
        {**good, "event_id": "b1", "event_type": "lowercase"},
        {**good, "event_id": "b2", "partition": -1},
        {k: v for k, v in good.items() if k != "trade_id"} | {"event_id": "b3"},
        {**good, "event_id": "b4", "message": "bell\x07"},
    ]
    response = await api.post("/ingest/trade-events", json=[good, *bad])

    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 1
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, ["event_type"]),
        (2, ["partition"]),
        (3, ["trade_id"]),
        (4, ["message"]),
    ]
    none_valid = await api.post("/ingest/dlq-events", json={"trade_id": "x"})
    assert none_valid.status_code == 422


async def test_rttm_ingest_requires_basic_auth(api: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(transport=api._transport, base_url="http://api") as anonymous:
        response = await anonymous.post("/ingest/trade-events", json=trade_events("T3", now_ms(), 1))
    assert response.status_code == 401


async def test_metrics_before_any_snapshot_is_503(api: httpx.AsyncClient) -> None:
    response = await api.get("/rttm/metrics")
    assert response.status_code == 503
    assert "is a worker running" in response.json()["detail"]


async def test_read_api_after_the_pipeline_ran(api: httpx.AsyncClient, settings: Settings) -> None:
    settings.RTTM_STUCK_AFTER_S = 5
    settings.RTTM_ALERT_STUCK_TRADES = 0  # one stuck trade fires the alert
    now = now_ms()
    done = trade_events("DONE", now - 20_000)
    stuck = trade_events("STUCK", now - 30_000, stages=3)
    failed = trade_events("FAIL", now - 15_000, stages=3)
    failed[-1] |= {"event_type": "VALIDATION_FAILED", "event_status": "FAILED"}
    await api.post("/ingest/trade-events", json=done[3:] + stuck + failed)
    await api.post("/ingest/trade-events", json=done[:3])  # the start of a trade arrives late
    await api.post(
        "/ingest/dlq-events",
        json={
            "trade_id": "FAIL",
            "service_name": "validation-service",
            "topic_name": "trade-dlq",
            "reason": "Schema validation failed",
            "event_time": now - 14_950,
        },  # fmt: skip
    )
    await api.post(
        "/ingest/queue-metrics",
        json=[
            {
                "service_name": "validation-service",
                "topic_name": "q2",
                "partition": p,
                "produced_offset": 100,
                "consumed_offset": 90 - p,
                "snapshot_time": now - 1_000,
            }
            for p in (0, 1)
        ],  # fmt: skip
    )

    snap = process(settings)

    metrics = (await api.get("/rttm/metrics")).json()
    assert metrics["trades"]["completed"] == 1
    assert metrics["trades"]["failed"] == 1
    assert metrics["latency_ms"]["end_to_end"]["count"] == 1
    assert metrics["latency_ms"]["end_to_end"]["p50"] == pytest.approx(100, rel=0.02)
    assert metrics["stuck"]["count"] == 1
    assert metrics == snap

    trace = (await api.get("/rttm/trades/DONE")).json()
    assert trace["status"] == "completed"
    assert [e["service_name"] for e in trace["events"]] == [s for s, _ in STAGES]
    assert [e["stage_latency_ms"] for e in trace["events"]] == [None, 20, 20, 20, 20, 20]
    assert trace["end_to_end_ms"] == 100
    assert trace["events"][2]["offset"] == 102  # from Postgres: every field
    failed_trace = (await api.get("/rttm/trades/FAIL")).json()
    assert failed_trace["status"] == "failed"
    assert failed_trace["dlq"][0]["reason"] == "Schema validation failed"
    assert (await api.get("/rttm/trades/NOPE")).status_code == 404

    stuck_list = (await api.get("/rttm/stuck")).json()
    assert stuck_list["count"] == 1
    assert stuck_list["trades"][0] | {"last_event_time": 0} == {
        "trade_id": "STUCK", "last_event_time": 0, "last_service": "validation-service",
        "last_event_type": "VALIDATION_SUCCESS",
    }  # fmt: skip

    dlq = (await api.get("/rttm/dlq", params={"limit": 5})).json()
    assert [e["trade_id"] for e in dlq["events"]] == ["FAIL"]

    pipeline = (await api.get("/rttm/pipeline")).json()
    assert [(p["partition"], p["lag"]) for p in pipeline["partitions"]] == [(0, 10), (1, 11)]
    assert pipeline["by_service"] == {"validation-service": 21}

    alerts = (await api.get("/rttm/alerts")).json()
    assert [a["rule"] for a in alerts["firing"]] == ["stuck_trades"]
    assert [(a["rule"], a["resolved_at"]) for a in alerts["history"]] == [("stuck_trades", None)]


async def test_headline_figures_on_prometheus_metrics(api: httpx.AsyncClient, settings: Settings) -> None:
    before = REGISTRY.get_sample_value("mdstack_rttm_events_total", {"kind": "trade"}) or 0.0
    now = now_ms()
    await api.post("/ingest/trade-events", json=trade_events("P1", now - 10_000))
    await api.post(
        "/ingest/error-events",
        json={
            "service_name": "pms-core-service",
            "error_type": "DB_TIMEOUT",
            "error_message": "t",
            "event_time": now - 9_000,
        },
    )
    process(settings)

    text = (await api.get("/metrics")).text

    assert 'mdstack_rttm_end_to_end_latency_ms{quantile="0.5"} 100' in text.replace(".0\n", "\n")
    assert 'mdstack_rttm_errors_window{service="pms-core-service"} 1.0' in text
    assert "mdstack_rttm_stuck_trades 0.0" in text
    assert REGISTRY.get_sample_value("mdstack_rttm_events_total", {"kind": "trade"}) - before == 6
    assert REGISTRY.get_sample_value(
        "mdstack_rttm_errors_total", {"service": "pms-core-service", "error_type": "DB_TIMEOUT"}
    )
