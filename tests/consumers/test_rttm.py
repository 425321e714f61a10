"""The RTTM metrics engine on real Redis: apply, finalize, snapshot, alerts, election."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from harness.percentiles import percentiles
from services.common.keys import FINAL_MARK, TERM_MARK, Keys
from services.common.settings import Settings
from services.consumers.defaults import TPS_SERIES_S, UNCHANGED_PUBLISH_S
from services.consumers.rttm import alerts, sketch, snapshot
from services.consumers.rttm import apply as rttm_apply
from services.consumers.rttm.ticker import Ticker
from services.flusher.writer import Flusher
from tests.factories import stored_batch


def apply(client: redis.Redis, settings: Settings, batch_id: str, items: dict[str, Any], now_ms: float) -> bool:
    """The worker's step on a batch as ingest stored it (a second call with the same id is a retried job)."""
    return rttm_apply.apply(client, settings, stored_batch(client, settings, batch_id, [], **items), items, now_ms)


NOW = 1_767_225_900_000  # 2026-01-01T00:05:00Z
STAGES = ["simulation", "capture", "validation", "pms-core", "analytics", "leaderboard"]
TYPES = ["TRADE_CREATED", "TRADE_CAPTURED", "VALIDATION_SUCCESS", "POSITION_UPDATED", "ANALYTICS_COMPUTED"]


def trade_event(trade_id: str, stage: int, t: int, *, failed: bool = False) -> dict[str, Any]:
    type_ = "LEADERBOARD_UPDATED" if stage == 5 else TYPES[stage]
    if failed:
        type_ = "VALIDATION_FAILED"
    return {
        "event_key": f"{trade_id}:{stage}",
        "event_id": None,
        "trade_id": trade_id,
        "service_name": STAGES[stage],
        "event_type": type_,
        "event_status": "FAILED" if failed else "SUCCESS",
        "event_time": t,
        "received_at": float(t),
    }


def pipeline_trades(n: int, seed: int, *, start: int = NOW - 60_000) -> list[dict[str, Any]]:
    """n complete trades, 6 events each, over the minute before NOW."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = start + rng.randrange(0, 50_000)
        for stage in range(6):
            if stage:
                t += rng.randrange(1, 400)
            events.append(trade_event(f"T{seed}-{i}", stage, t))
    return events


def dlq(t: int, reason: str = "Schema validation failed") -> dict[str, Any]:
    return {"event_key": uuid.uuid4().hex, "trade_id": "X", "service_name": "validation", "topic_name": "trade-dlq",
            "reason": reason, "event_time": t, "received_at": float(t)}  # fmt: skip


def error(t: int, type_: str = "DB_TIMEOUT") -> dict[str, Any]:
    return {"event_key": uuid.uuid4().hex, "trade_id": "X", "service_name": "pms-core", "error_type": type_,
            "error_message": "timeout", "event_time": t, "received_at": float(t)}  # fmt: skip


def queue(t: int, produced: int, consumed: int, partition: int = 0) -> dict[str, Any]:
    return {"event_key": uuid.uuid4().hex, "service_name": "validation", "topic_name": "trade-captured",
            "partition": partition, "produced_offset": produced, "consumed_offset": consumed,
            "snapshot_time": t, "received_at": float(t)}  # fmt: skip


def tick(settings: Settings, client: redis.Redis, now: int = NOW, name: str = "w1") -> dict[str, Any]:
    settings.RTTM_FINALIZE_GRACE_S = 0
    snap = Ticker(settings, client, name).tick(now)
    assert snap is not None
    return snap


def comparable(snap: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in snap.items() if k not in ("computed_at", "alerts")}


def test_snapshot_counts_and_latency_quantiles(settings: Settings, client: redis.Redis) -> None:
    events = pipeline_trades(200, seed=1)
    apply(client, settings, "b1", {"trade": events}, NOW - 30_000)

    snap = tick(settings, client)

    assert snap["trades"]["events_in_window"] == 1200
    assert snap["trades"]["completed"] == 200
    assert snap["trades"]["active"] == 0
    assert snap["tps"]["by_service"]["validation"] == round(200 / 60, 3)
    assert snap["tps"]["by_event_type"]["LEADERBOARD_UPDATED"] == round(200 / 60, 3)
    assert sum(count for _, count in snap["tps"]["series"]) == 1200
    by_trade: dict[str, list[dict]] = {}
    for e in events:
        by_trade.setdefault(e["trade_id"], []).append(e)
    e2e = [float(ev[-1]["event_time"] - ev[0]["event_time"]) for ev in by_trade.values()]
    validation = [float(ev[2]["event_time"] - ev[1]["event_time"]) for ev in by_trade.values()]
    got = snap["latency_ms"]
    assert got["end_to_end"]["count"] == 200
    assert got["stages"]["validation"]["count"] == 200
    assert "simulation" not in got["stages"]  # the first stage has no predecessor
    exact_e2e, exact_validation = percentiles(e2e), percentiles(validation)
    for name in ("p50", "p95", "p99"):  # DDSketch: within its 1% relative accuracy, plus the sample's spacing
        assert got["end_to_end"][name] == pytest.approx(exact_e2e[name], rel=0.02)
        assert got["stages"]["validation"][name] == pytest.approx(exact_validation[name], rel=0.02)


def test_an_idle_pipeline_gives_the_zero_snapshot_and_its_first_event_counts(
    settings: Settings, client: redis.Redis
) -> None:
    """No counter in the window takes counters.lua's short way (one EXISTS); the first event its long one."""
    idle = tick(settings, client)
    assert [count for _, count in idle["tps"]["series"]] == [0] * TPS_SERIES_S
    assert idle["tps"]["series"][-1][0] == NOW - NOW % 1000 - 1000  # the last complete second
    assert idle["trades"]["events_in_window"] == 0
    assert idle["tps"]["current"] == 0
    assert idle["tps"]["by_service"] == {}

    apply(client, settings, "b1", {"trade": [trade_event("T1", 0, NOW - 2_000)]}, NOW - 1_000)
    snap = tick(settings, client)
    assert snap["trades"]["events_in_window"] == 1
    assert dict(snap["tps"]["series"])[NOW - 2_000] == 1


def test_split_shuffled_concurrent_and_retried_batches_give_the_same_snapshot(
    settings: Settings, client: redis.Redis
) -> None:
    events = pipeline_trades(150, seed=2)
    others = {
        "dlq": [dlq(NOW - 5_000), dlq(NOW - 90_000)],
        "error": [error(NOW - 3_000)],
        "queue": [queue(NOW - 20_000, 100, 40), queue(NOW - 8_000, 150, 120), queue(NOW - 14_000, 130, 50)],
    }
    apply(client, settings, "one", {"trade": events, **others}, NOW - 30_000)
    one = comparable(tick(settings, client))

    other = settings.model_copy(update={"KEY_PREFIX": settings.KEY_PREFIX + "many:"})
    rng = random.Random(3)
    shuffled = events[:]
    rng.shuffle(shuffled)
    batches: list[dict[str, list]] = [{"trade": shuffled[i : i + 40]} for i in range(0, len(shuffled), 40)]
    batches += (
        [{"dlq": [d]} for d in others["dlq"]] + [{"error": others["error"]}] + [{"queue": [q]} for q in others["queue"]]
    )
    rng.shuffle(batches)
    threads = [
        threading.Thread(target=apply, args=(redis.Redis.from_url(settings.redis_url), other, f"b{i}", b, NOW - 30_000))
        for i, b in enumerate(batches)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, b in enumerate(batches[:5]):  # retried jobs
        assert apply(client, other, f"b{i}", b, NOW - 30_000) is False
    many = comparable(tick(other, client))

    assert many == one
    assert one["pipeline"]["partitions"][0]["lag"] == 30  # the newest snapshot wins, whatever the order
    assert one["dlq"] == {"last_1m": 1, "in_window": 2, "by_service": {"validation": 2},
                          "by_reason": {"Schema validation failed": 2}}  # fmt: skip


def test_stuck_trades_are_non_terminal_and_silent(settings: Settings, client: redis.Redis) -> None:
    settings.RTTM_STUCK_AFTER_S = 30
    stuck = [trade_event("S1", 0, NOW - 100_000), trade_event("S1", 1, NOW - 90_000)]
    fresh = [trade_event("F1", 0, NOW - 5_000)]
    done_late = [
        trade_event("D1", 5, NOW - 80_000),
        trade_event("D1", 0, NOW - 85_000),
    ]  # terminal first, then an earlier one
    apply(client, settings, "b1", {"trade": stuck + fresh + done_late[:1]}, NOW - 60_000)
    apply(client, settings, "b2", {"trade": done_late[1:]}, NOW - 60_000)

    snap = tick(settings, client)

    assert snap["stuck"]["count"] == 1
    assert snap["stuck"]["oldest"] == [{"trade_id": "S1", "last_event_time": NOW - 90_000}]
    assert snap["trades"]["active"] == 2


def test_late_events_after_measuring_are_counted_not_measured(settings: Settings, client: redis.Redis) -> None:
    apply(client, settings, "b1", {"trade": [trade_event("L", 0, NOW - 9_000), trade_event("L", 5, NOW - 8_000)]}, 0)
    first = tick(settings, client)
    apply(client, settings, "b2", {"trade": [trade_event("L", 3, NOW - 8_500)]}, 0)
    second = tick(settings, client)

    assert first["latency_ms"]["end_to_end"]["count"] == 1
    assert second["latency_ms"]["end_to_end"]["count"] == 1
    assert second["trades"]["late_events"] == 1


def test_depth_trend_and_error_windows(settings: Settings, client: redis.Redis) -> None:
    apply(client, settings, "q", {"queue": [queue(NOW - 25_000, 10, 0), queue(NOW - 15_000, 50, 20, partition=1),
                                            queue(NOW - 2_000, 20, 20)], "error": [error(NOW - 10_000),
                                            error(NOW - 200_000, "BAD")]}, NOW)  # fmt: skip
    snap = tick(settings, client)

    assert [(p["partition"], p["lag"]) for p in snap["pipeline"]["partitions"]] == [(0, 0), (1, 30)]
    assert snap["pipeline"]["max_lag"] == 30
    assert snap["pipeline"]["by_service"] == {"validation": 30}
    trend = dict(snap["pipeline"]["trend"])
    assert trend[NOW - 40_000] is None  # nothing known yet
    assert trend[NOW - 30_000] == 10  # partition 0 at 25 s ago
    assert trend[NOW - 20_000] == 10 + 30  # partition 1 joins
    assert trend[NOW - 10_000] == 0 + 30  # partition 0 caught up 2 s ago
    assert trend[NOW] == 30
    assert snap["errors"]["last_1m"] == 1
    assert snap["errors"]["by_type"] == {"BAD": 1, "DB_TIMEOUT": 1}


def test_alert_fires_once_resolves_once_and_is_persisted_and_published(settings: Settings, client: redis.Redis) -> None:
    settings.RTTM_ALERT_DLQ_PER_MIN = 2
    pubsub = client.pubsub()
    pubsub.subscribe(settings.PUBSUB_CHANNEL)
    pubsub.get_message(timeout=1)
    apply(client, settings, "b1", {"dlq": [dlq(NOW - 1_500 - i) for i in range(3)]}, NOW)

    fired = tick(settings, client)
    still = tick(settings, client, NOW + 1_000)
    resolved = tick(settings, client, NOW + 90_000)

    assert [a["rule"] for a in fired["alerts"]] == ["dlq_per_min"]
    assert fired["alerts"][0]["value"] == 3
    assert still["alerts"] == fired["alerts"]
    assert resolved["alerts"] == []
    events = []
    while (m := pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
        env = orjson.loads(m["data"])
        if env["type"].startswith("alert."):
            events.append((env["type"], env["data"]["rule"]))
    assert events == [("alert.fired", "dlq_per_min"), ("alert.resolved", "dlq_per_min")]
    pubsub.close()
    f = Flusher(settings, client, "f")
    f.ensure_group()
    settings.FLUSH_INTERVAL_MS = 50
    f.flush_once()
    with f._connection().cursor() as cur:
        rows = cur.execute("SELECT rule, state, value FROM rttm_alerts ORDER BY event_time").fetchall()
    f.close()
    assert rows == [("dlq_per_min", "fired", 3.0), ("dlq_per_min", "resolved", 0.0)]


def test_alert_rules_from_yaml_override_add_and_disable(settings: Settings, tmp_path: Path) -> None:
    rules_file = tmp_path / "alerts.yaml"
    rules_file.write_text(
        "rules:\n"
        "  - {name: pipeline_depth, threshold: 5}\n"
        "  - {name: validation_errors, metric: errors_per_min, threshold: 1}\n"
        "  - {name: stuck_trades, enabled: false}\n"
    )
    settings.RTTM_ALERTS_FILE = str(rules_file)
    rules = {r.name: r for r in alerts.load_rules(settings)}

    assert rules["pipeline_depth"] == alerts.Rule("pipeline_depth", "pipeline_depth", 5.0)
    assert rules["validation_errors"] == alerts.Rule("validation_errors", "errors_per_min", 1.0)
    assert "stuck_trades" not in rules
    rules_file.write_text("rules:\n  - {name: nonsense, metric: cpu, threshold: 1}\n")
    with pytest.raises(ValueError, match="needs a metric"):
        alerts.load_rules(settings)


def test_only_one_ticker_leads(settings: Settings, client: redis.Redis) -> None:
    a, b = Ticker(settings, client, "a"), Ticker(settings, client, "b")
    assert a.tick(NOW) is not None
    assert b.tick(NOW) is None
    assert a.tick(NOW + 1000) is not None
    client.delete(a.keys.rttm_leader)  # a died: its lease ran out
    assert b.tick(NOW + 5000) is not None
    assert a.tick(NOW + 6000) is None


def test_sketch_buckets_are_exact_counts() -> None:
    counts = sketch.counts([0.0, 1.0, 1.0, 250.0])
    assert counts[sketch.ZERO] == 1
    assert sum(counts.values()) == 4
    assert sketch.quantiles(counts)["count"] == 4
    assert sketch.quantiles({}) == {"p50": None, "p95": None, "p99": None, "count": 0}


def test_partitions_past_the_cap_are_counted_not_kept_and_silent_ones_are_forgotten(
    client: redis.Redis, settings: Settings
) -> None:
    settings.RTTM_MAX_QUEUES = 3
    keys = Keys(settings.KEY_PREFIX)
    metrics = [queue(NOW - 1_000, 10 * p, p, partition=p) for p in range(5)]
    apply(client, settings, "q1", {"queue": metrics}, NOW)

    assert sorted(client.hkeys(keys.rttm_queues)) == [b"validation|trade-captured|0", b"validation|trade-captured|1",
                                                      b"validation|trade-captured|2"]  # fmt: skip
    assert int(client.hget(keys.rttm_late, "queues_over_cap")) >= 2
    # A known partition still updates at the cap.
    apply(client, settings, "q2", {"queue": [queue(NOW, 99, 98, partition=1)]}, NOW)
    assert client.hget(keys.rttm_queues, "validation|trade-captured|1").startswith(f"{NOW}|99|98".encode())
    # Partitions silent for RTTM_RETENTION_S are dropped by the ticker.
    forgotten = Ticker(settings, client, "w1").forget_partitions(NOW - 500)
    assert forgotten == 2
    assert client.hkeys(keys.rttm_queues) == [b"validation|trade-captured|1"]


def test_stages_past_the_cap_get_no_sketch(client: redis.Redis, settings: Settings) -> None:
    settings.RTTM_MAX_STAGES = 2
    events = pipeline_trades(20, seed=3)
    apply(client, settings, "s1", {"trade": events}, NOW - 30_000)
    tick(settings, client)

    keys = Keys(settings.KEY_PREFIX)
    assert client.scard(keys.rttm_stages) == 2
    assert int(client.hget(keys.rttm_late, "stages_over_cap")) > 0
    stages = {k.decode().split(":")[-2] for k in client.scan_iter(match=keys.rttm_latency("*", 0)[:-1] + "*")}
    assert stages == {s.decode() for s in client.smembers(keys.rttm_stages)}


def test_a_trade_hash_left_unreadable_is_dropped_and_the_ticker_goes_on(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """What an earlier version let a client write (an event in the `~term` field, issue 13) stays in Redis
    across an upgrade until it expires: it is measured as nothing, once, not retried (and failed) every tick."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    now = NOW
    client.hset(keys.rttm_trade("TX1"), mapping={"a1": f"{now}|leaderboard-service|LEADERBOARD_UPDATED|SUCCESS",
                                                  TERM_MARK: f"{now}|s|X|OK"})  # fmt: skip
    client.zadd(keys.rttm_due, {"TX1": now})
    ticker = Ticker(settings, client, "t")

    with caplog.at_level(logging.ERROR):
        snaps = [ticker.tick(now + 1000 * s) for s in (1, 2)]

    assert all(snap is not None for snap in snaps)
    assert client.zcard(keys.rttm_due) == 0
    assert [r.getMessage() for r in caplog.records].count("rttm.trade_unreadable") == 1
    client.close()


def test_a_snapshot_unchanged_but_for_its_time_is_published_again_only_every_few_seconds(
    settings: Settings, client: redis.Redis
) -> None:
    settings.RTTM_FINALIZE_GRACE_S = 0
    ticker = Ticker(settings, client, "w1")
    pubsub = client.pubsub()
    pubsub.subscribe(settings.PUBSUB_CHANNEL)
    pubsub.get_message(timeout=1)
    times = [NOW + s * 1_000 for s in range(UNCHANGED_PUBLISH_S + 2)]  # an idle pipeline
    snaps = [ticker.tick(t) for t in times]
    apply(client, settings, "b2", {"dlq": [dlq(times[-1] - 500)]}, times[-1])
    changed = ticker.tick(times[-1] + 1_000)
    published = []
    while (m := pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
        env = orjson.loads(m["data"])
        if env["type"] == "rttm.metrics":
            published.append(env["data"]["computed_at"])
    pubsub.close()
    assert all(s is not None and s["tps"]["series"][-1][1] == 0 for s in snaps)  # nothing but the time moved
    assert changed is not None
    assert comparable(changed) != comparable(snaps[0])
    # The first, the one a keep-alive later, then the changed one at once.
    assert published == [times[0], times[UNCHANGED_PUBLISH_S], changed["computed_at"]]
    assert orjson.loads(client.get(Keys(settings.KEY_PREFIX).rttm_snapshot))["computed_at"] == changed["computed_at"]


def test_an_idle_ticker_builds_each_snapshot_from_the_blank_state_it_last_read(
    settings: Settings, client: redis.Redis
) -> None:
    """Quiet ticks read only the lease and the change token: a counter written behind apply.lua's back is not
    seen, yet every quiet snapshot is what a full computation at its time gives, and the next applied batch is."""
    settings.RTTM_FINALIZE_GRACE_S = 0
    ticker = Ticker(settings, client, "w1")
    keys = Keys(settings.KEY_PREFIX)
    times = [NOW + s * 1_000 for s in range(12)]  # across a 10 s bucket of the queue trend
    first = ticker.tick(times[0])
    assert first is not None
    client.hincrby(keys.rttm_counters(times[0]), "trade", 5)  # not through apply: no new token
    for t in times[1:]:
        quiet = ticker.tick(t)
        assert quiet is not None
        assert quiet["trades"]["events_in_window"] == 0  # the stray counter was not read
        client.delete(keys.rttm_counters(times[0]))
        assert quiet == {**snapshot.compute(client, settings, t), "alerts": []}  # the same as read afresh
        client.hincrby(keys.rttm_counters(times[0]), "trade", 5)
    apply(client, settings, "b1", {"trade": [trade_event("T1", 0, times[-1] - 500)]}, times[-1])
    assert 0 < client.ttl(keys.rttm_rev) <= settings.RTTM_RETENTION_S  # the token's bound (keys.FAMILIES)
    woken = ticker.tick(times[-1] + 1_000)
    assert woken is not None
    assert woken["trades"]["events_in_window"] == 1 + 5  # a new token: everything is read again


def test_a_due_trade_is_measured_even_when_nothing_in_the_windows_changed(
    settings: Settings, client: redis.Redis
) -> None:
    """A trade back-dated past the window leaves the windows blank, but it is due: the tick finalizes it."""
    settings.RTTM_FINALIZE_GRACE_S = 2
    ticker = Ticker(settings, client, "w1")
    keys = Keys(settings.KEY_PREFIX)
    old = NOW - (settings.RTTM_WINDOW_S + 60) * 1_000
    events = [trade_event("OLD", stage, old + stage * 100) for stage in range(6)]
    apply(client, settings, "b1", {"trade": events}, NOW)
    assert ticker.tick(NOW) is not None  # within the grace: not measured yet
    assert client.zcard(keys.rttm_due) == 1
    assert ticker.tick(NOW + 1_000) is not None
    assert ticker.tick(NOW + 3_000) is not None  # past the grace
    assert client.zcard(keys.rttm_due) == 0
    assert client.hexists(keys.rttm_trade("OLD"), FINAL_MARK)
