"""Client strings and internal names: no string a client chooses can equal a name mdstack gives itself.

Issue 13 item 1: an `event_id` of `~term` landed on a trade's terminal mark, and every ticker pass failed
from then on. The rule (doc/security.md, "Client strings and internal names"): who named a string is told by
its first character (a client's event_id starts with a letter or digit, a derived key with `@`, an internal
mark with `~`), and a derived key's parts are joined by a character no name may contain.
"""

from __future__ import annotations

import httpx
import pytest
import redis

from services.common.events import QueueMetricIn, TradeEventIn
from services.common.keys import END_TO_END_STAGE, FINAL_MARK, TERM_MARK
from services.common.settings import Settings
from services.consumers.rttm.ticker import Ticker
from tests.orchestrator_api.test_rttm_api import now_ms, process
from tests.security.helpers import BOTH_PATHS, INGEST, make_item, redis_keys

pytestmark = [pytest.mark.anyio, BOTH_PATHS]
TRADES = "/ingest/trade-events"
RTTM = [path for path, (kind, _) in INGEST.items() if kind != "tick"]


def issue_13_events(now: int) -> list[dict[str, object]]:
    """The two events of issue 13, as posted on a running stack."""
    return [
        {"trade_id": "TX1", "service_name": "leaderboard-service", "event_type": "LEADERBOARD_UPDATED",
         "event_status": "SUCCESS", "event_time": now, "event_id": "a1"},
        {"trade_id": "TX1", "service_name": "s", "event_type": "X", "event_status": "OK", "event_time": now,
         "event_id": "~term"},
    ]  # fmt: skip


def rejected_fields(response: httpx.Response) -> list[tuple[int, str]]:
    body = response.json()
    items = body["rejected"] if response.status_code == 200 else body["detail"]
    return [(r["index"], e["field"]) for r in items for e in r["errors"]]


async def test_an_event_id_spelling_a_trade_mark_is_refused_and_monitoring_keeps_working(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    posted = await api.post(TRADES, json=issue_13_events(now_ms() - 2000))  # in the snapshot's last whole second

    first = process(settings)  # the worker applies the batch; the ticker measures TX1 (no grace) and snapshots
    client = redis.Redis.from_url(settings.redis_url)
    later = [Ticker(settings, client, "t").tick(now_ms() + 1000 * s) for s in (1, 2)]
    client.close()
    metrics = await api.get("/rttm/metrics")

    assert posted.status_code == 200
    assert (posted.json()["accepted"], rejected_fields(posted)) == (1, [(1, "event_id")])
    assert first["trades"]["completed"] == 1
    assert all(snap is not None for snap in later)
    assert metrics.status_code == 200


@pytest.mark.parametrize("mark", [TERM_MARK, FINAL_MARK, END_TO_END_STAGE, "@trade|t|1|7|svc", "@dlq|0f"])
async def test_no_internal_name_is_a_valid_event_id_on_any_route(api: httpx.AsyncClient, mark: str) -> None:
    for path in INGEST:
        item = make_item(path, event_id=mark)
        response = await api.post(path, json=[item] if path == "/ingest/ticks" else item)

        assert response.status_code == 422, (path, response.text)
        assert rejected_fields(response) == [(0, "event_id")], path


async def test_a_service_cannot_be_named_like_the_end_to_end_stage(api: httpx.AsyncClient) -> None:
    for path in RTTM:
        response = await api.post(path, json=make_item(path, service_name=END_TO_END_STAGE))

        assert rejected_fields(response) == [(0, "service_name")], path


async def test_a_service_called_end_to_end_does_not_change_the_end_to_end_latency(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    t0 = now_ms() - 5_000
    trade = [
        ("capture-service", "TRADE_CAPTURED", t0),
        ("end_to_end", "ANALYTICS_COMPUTED", t0 + 500),  # a stage of 500 ms, by a client's service name
        ("leaderboard-service", "LEADERBOARD_UPDATED", t0 + 600),  # the trade took 600 ms end to end
    ]
    events = [
        make_item(TRADES, trade_id="E2E", service_name=s, event_type=e, event_status="SUCCESS", event_time=t)
        for s, e, t in trade
    ]
    assert (await api.post(TRADES, json=events)).json()["accepted"] == 3

    latency = process(settings)["latency_ms"]

    assert latency["end_to_end"]["count"] == 1
    assert latency["end_to_end"]["p50"] == pytest.approx(600, rel=0.02)
    assert latency["stages"]["end_to_end"]["count"] == 1
    assert latency["stages"]["end_to_end"]["p50"] == pytest.approx(500, rel=0.02)


async def test_a_client_event_id_cannot_pose_as_another_events_natural_key(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """A trade event without an id is keyed by topic + partition + offset + service; a client's id never is."""
    genuine = make_item(TRADES, topic_name="trades", partition=1, offset=7, event_id=None)
    natural = TradeEventIn.model_validate(genuine).natural_key()
    old_spelling = f"trade:trades:1:7:{genuine['service_name']}"  # how the natural key was spelt before

    forged = await api.post(
        TRADES, json=[make_item(TRADES, event_id=natural), make_item(TRADES, event_id=old_spelling)]
    )
    real = await api.post(TRADES, json=genuine)

    assert (forged.json()["accepted"], rejected_fields(forged)) == (1, [(0, "event_id")])
    assert real.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert redis_keys(settings)["flush"] == {"trade": [old_spelling, natural]}


async def test_events_whose_names_differ_only_in_where_a_colon_falls_have_different_keys(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Names may contain `:`: joined with `:`, topic `x:1:2` partition 3 and topic `x` partition 1 offset 2
    service `3:4:s` spelt the same key, and the second event was dropped as a duplicate of the first."""
    trades = [
        make_item(TRADES, topic_name="x:1:2", partition=3, offset=4, service_name="s", event_id=None),
        make_item(TRADES, topic_name="x", partition=1, offset=2, service_name="3:4:s", event_id=None),
    ]
    queue, now = "/ingest/queue-metrics", now_ms()
    queues = [
        make_item(queue, service_name="a:b", topic_name="c", snapshot_time=now, event_id=None),
        make_item(queue, service_name="a", topic_name="b:c", snapshot_time=now, event_id=None),
    ]

    assert (await api.post(TRADES, json=trades)).json()["accepted"] == 2
    assert (await api.post(queue, json=queues)).json()["accepted"] == 2
    assert redis_keys(settings)["flush"] == {
        "trade": [TradeEventIn.model_validate(t).natural_key() for t in trades],
        "queue": [QueueMetricIn.model_validate(q).natural_key() for q in queues],
    }
