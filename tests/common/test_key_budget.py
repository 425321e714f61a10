"""The Redis budget: each key family's bytes per item as declared, each bound enforced.

Items are written the way the services write them (the group commit, calc-a,
the views script, the RTTM scripts) on the real Redis, then measured with
MEMORY USAGE; a family whose declared bytes per item drifts more than MARGIN
from what it costs fails here, so `keys.project` stays a true forecast.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
import redis

from harness.servers import serve
from services.common import realtime
from services.common.embedded import free_port
from services.common.jobs import job_queue
from services.common.keys import DEMO_RATES, FAMILIES, Keys, Rates, family_of, project
from services.common.keyspace import usage
from services.common.kinds import QUEUE, TICK, TRADE
from services.common.schemas import envelope
from services.common.scripts import register
from services.common.settings import Settings
from services.consumers import context, tasks, windows
from services.consumers.defaults import DRAIN_LOCK_S
from services.consumers.reaper import Reaper
from services.consumers.rttm import apply as rttm_apply
from services.consumers.rttm.ticker import Ticker
from services.consumers.view import build_view
from services.consumers.worker import make_worker
from services.orchestrator_api.app import create_app
from services.orchestrator_api.ingest.commit import GroupCommitter
from services.realtime_gateway.defaults import TICKS_WANTED_TTL_S
from tests.consumers.test_rttm import pipeline_trades
from tests.consumers.test_rttm import queue as rttm_queue
from tests.factories import make_tick, stored_batch
from tests.keys import unbounded_keys

# Measured bytes per item must be at most declared x (1 + MARGIN) and at least declared x FLOOR: declared
# sizes are the larger of Redis 7.0's and 6.2's, so the other may be well under them.
MARGIN = 0.35
FLOOR = 0.5
BY_NAME = {f.name: f for f in FAMILIES}
STAGES = ["simulation", "capture", "validation", "pms-core", "analytics", "leaderboard"]


def per_item(client: redis.Redis, settings: Settings, family: str, items: int) -> float:
    measured = usage(client, settings.KEY_PREFIX).get(family)
    assert measured is not None, f"no key of family {family}"
    return measured.bytes / items


def assert_declared(family: str, measured: float) -> None:
    declared = BY_NAME[family].item_bytes
    assert declared * FLOOR <= measured <= declared * (1 + MARGIN), (
        f"{family}: {measured:.0f} bytes per item measured, {declared} declared in keys.FAMILIES"
    )


def commit(settings: Settings, client: redis.Redis, ticks: list[dict[str, Any]], per_request: int = 1) -> list[int]:
    committer = GroupCommitter(settings, client)
    committer.merger.per_tick = True  # a tick.received per tick too: the history at its fullest
    now = time.time() * 1000
    items = [(TICK, t["event_id"], {**t, "received_at": now}) for t in ticks]
    return committer._commit([items[i : i + per_request] for i in range(0, len(items), per_request)])


def test_every_family_is_bounded_and_every_key_has_a_family() -> None:
    for family in FAMILIES:
        assert family.bound in ("ttl", "entries", "count", "fixed"), family.name
        assert family.setting, family.name
        assert family.item_bytes > 0, family.name
    assert family_of("md:dedup:tick:2946240", "md:").name == "dedup"  # type: ignore[union-attr]
    assert family_of("md:sym:BTCUSDT:c:15m:1767225600000", "md:").name == "sym.candle"  # type: ignore[union-attr]
    assert family_of("md:applied:0123", "md:") is None  # the old per-batch marker is no family: a leak


def test_ingest_families_cost_what_they_declare(settings: Settings, client: redis.Redis) -> None:
    settings.SSE_HISTORY = 1_000_000  # so the history's byte cap, not its entry cap, is what holds it
    settings.SSE_HISTORY_BYTES = 512 * 1024
    n = 20_000
    ticks = [make_tick(symbol=f"S{i % 5}", event_id=f"feeder-7f3a-{i}") for i in range(n)]
    flags = []
    for i in range(0, n, 2000):
        flags += commit(settings, client, ticks[i : i + 2000], per_request=2000)
    assert flags == [1] * n

    assert_declared("dedup", per_item(client, settings, "dedup", n))
    assert_declared("batch", per_item(client, settings, "batch", n))
    assert_declared("flush", per_item(client, settings, "flush", n))
    history = usage(client, settings.KEY_PREFIX)["events"].bytes
    assert history <= settings.SSE_HISTORY_BYTES * (1 + MARGIN), f"history holds {history} bytes"
    assert history >= settings.SSE_HISTORY_BYTES * (1 - MARGIN)  # and it keeps what the budget allows
    assert unbounded_keys(settings) == []


@pytest.mark.slow  # 2,000 commits, one by one
def test_pending_batches_and_a_jobs_claims_cost_what_they_declare(settings: Settings, client: redis.Redis) -> None:
    settings.JOB_MAX_ITEMS = 1_000_000
    n = 2000
    for i in range(n):  # a commit each: a batch each, all pending
        assert commit(settings, client, [make_tick(event_id=f"p-{i}")]) == [1]
    assert client.zcard(Keys(settings.KEY_PREFIX).pending) == n
    assert_declared("pending", per_item(client, settings, "pending", n))

    claimed = tasks.claim(client, settings, "f" * 32, "f" * 32)
    assert len(claimed) == n
    assert client.zcard(Keys(settings.KEY_PREFIX).pending) == 0
    assert_declared("claims", per_item(client, settings, "claims", n))
    assert unbounded_keys(settings) == []


def test_a_duplicate_within_the_window_is_caught_and_the_window_expires_whole(
    settings: Settings, client: redis.Redis
) -> None:
    settings.DEDUP_WINDOW_S = 600
    tick = make_tick(event_id="retry-me")
    assert commit(settings, client, [tick]) == [1]
    assert commit(settings, client, [tick, make_tick(event_id="other")]) == [0, 1]

    keys = Keys(settings.KEY_PREFIX)
    bucket = int(time.time() // 600)
    [name] = [k.decode() for k in client.scan_iter(match=keys.dedup("tick", 0)[:-1] + "*")]
    assert name in (keys.dedup("tick", bucket), keys.dedup("tick", bucket - 1))  # a bucket edge in between
    assert 600 < client.ttl(name) <= 1201  # both buckets it answers for, then gone
    # A key in the previous bucket's set is still a duplicate.
    client.rename(name, keys.dedup("tick", bucket - 1))
    assert commit(settings, client, [tick]) == [0]


def test_calc_a_families_cost_what_they_declare(settings: Settings, client: redis.Redis) -> None:
    now = int(time.time() * 1000)
    window = [
        make_tick(symbol="BTCUSDT", ts=now - 59_000 + i * 5, event_id=f"w-{i}", price=60_000 + i % 97)
        for i in range(10_000)
    ]
    windows.apply(client, settings, stored_batch(client, settings, "a" * 32, window), window)
    assert_declared("sym.window", per_item(client, settings, "sym.window", len(window)))

    # One tick in each of 300 minutes: CANDLES_KEEP 1m candles, plus the 5m and 15m ones.
    settings.SYMBOL_IDLE_S = 10 * 24 * 3600  # so none is past its idle expiry
    spread = [
        make_tick(symbol="ETHUSDT", ts=now - (300 - i) * 60_000, event_id=f"c-{i}") | {"received_at": float(now)}
        for i in range(300)
    ]
    [state] = windows.apply(client, settings, stored_batch(client, settings, "c" * 32, spread), spread)
    keys = Keys(settings.KEY_PREFIX)
    names = list(client.scan_iter(match=keys.sym("ETHUSDT") + "c:*"))
    candles = len(names)
    buckets = {ms: {t["ts"] - t["ts"] % ms for t in spread} for ms in (60_000, 300_000, 900_000)}
    assert candles == sum(min(len(b), settings.CANDLES_KEEP) for b in buckets.values())
    assert_declared("sym.candle", sum(client.memory_usage(n, samples=0) for n in names) / candles)

    view = build_view(state, spread, now)
    env = envelope("symbol.updated", {"symbol": "ETHUSDT", "view": view, "ts": view["ts"]}, symbol="ETHUSDT")
    register(client, "views", "services.orchestrator_api.views")(
        keys=[keys.history, keys.view("ETHUSDT"), keys.sym_state("ETHUSDT")["agg"]],
        args=[1000, settings.PUBSUB_CHANNEL, settings.SYMBOL_IDLE_S, view["version"], orjson.dumps(view), env],
    )
    assert_declared("view", per_item(client, settings, "view", 1))
    assert_declared("sym.last", per_item(client, settings, "sym.last", 2))  # two symbols
    assert unbounded_keys(settings) == []


def test_rttm_trade_state_costs_what_it_declares(settings: Settings, client: redis.Redis) -> None:
    now = int(time.time() * 1000)
    trades = 2000
    events = [
        {
            "event_key": f"T{i}:{stage}",
            "event_id": f"evt-{i}-{stage}",
            "trade_id": f"TRD-{i:08d}",
            "service_name": STAGES[stage],
            "event_type": "LEADERBOARD_UPDATED" if stage == 5 else f"STAGE_{stage}_DONE",
            "event_status": "SUCCESS",
            "event_time": now - 60_000 + i * 25 + stage * 40,
            "received_at": float(now),
        }
        for i in range(trades)
        for stage in range(6)
    ]
    batch = stored_batch(client, settings, "e" * 32, [], **{TRADE.name: events})
    assert rttm_apply.apply(client, settings, batch, {TRADE.name: events}, now)
    assert_declared("rttm.trade", per_item(client, settings, "rttm.trade", trades))
    seconds = usage(client, settings.KEY_PREFIX)["rttm.counters"].keys
    assert_declared("rttm.counters", per_item(client, settings, "rttm.counters", seconds))


def test_a_job_that_succeeds_leaves_nothing_behind(settings: Settings, client: redis.Redis) -> None:
    """RQ keeps no result payload and no job hash, and nothing of a batch outlives the batch."""
    settings.API_PORT = free_port()
    ticks = [make_tick(symbol="RQOK", event_id=f"ok-{i}") for i in range(3)]
    with serve(create_app(settings), settings.API_PORT):
        commit(settings, client, ticks, per_request=3)
        [job_id] = job_queue(settings, client).get_job_ids()
        make_worker(context.configure(settings)).work(burst=True)
        assert client.hget(Keys(settings.KEY_PREFIX).view("RQOK"), "version") == b"1"  # it ran

    assert client.exists(Keys(settings.KEY_PREFIX).batch(job_id), f"rq:job:{job_id}", f"rq:results:{job_id}") == 0
    assert client.get(Keys(settings.KEY_PREFIX).queued) == b"0"
    assert unbounded_keys(settings) == []


def test_a_job_that_fails_for_good_drops_its_batch_and_its_record_expires(
    settings: Settings, client: redis.Redis
) -> None:
    settings.API_URL = "http://127.0.0.1:9"  # the view post fails
    settings.JOB_RETRIES = 0
    commit(settings, client, [make_tick(symbol="RQX", event_id="rq-x")])
    [job_id] = job_queue(settings, client).get_job_ids()
    make_worker(context.configure(settings)).work(burst=True)

    assert client.exists(Keys(settings.KEY_PREFIX).batch(job_id)) == 0
    assert client.get(Keys(settings.KEY_PREFIX).queued) == b"0"  # no job will read it: not queued work any more
    for name in (f"rq:job:{job_id}", f"rq:results:{job_id}"):
        assert 0 < client.ttl(name) <= settings.JOB_FAILURE_TTL_S, name  # kept for a look, not for ever
    assert unbounded_keys(settings) == []


def test_the_demo_rate_fits_its_budget_and_so_does_1000_ticks_per_second() -> None:
    settings = Settings()
    demo = sum(project(settings, DEMO_RATES).values())
    fast = sum(project(settings, Rates(ticks=1000.0, events=DEMO_RATES.events, trades=DEMO_RATES.trades)).values())
    assert demo <= 50 * 2**20, f"demo rate projects to {demo / 2**20:.1f} MB"
    assert fast <= 256 * 2**20, f"1,000 ticks/s projects to {fast / 2**20:.1f} MB"


def test_history_cap_follows_envelope_size(settings: Settings) -> None:
    settings.SSE_HISTORY, settings.SSE_HISTORY_BYTES = 10_000, 1_000_000
    assert realtime.history_maxlen(settings, 0) == 10_000
    assert realtime.history_maxlen(settings, 76) == 10_000
    assert realtime.history_maxlen(settings, 1976) == 500


def test_small_and_rttm_families_cost_what_they_declare(settings: Settings, client: redis.Redis) -> None:
    """The families the other tests do not fill: counters, symbols, candle indexes, heartbeats, and RTTM's
    in-flight trades, latency sketches, partition metrics and snapshot."""
    keys = Keys(settings.KEY_PREFIX)
    symbols = 5
    ticks = [make_tick(symbol=f"SM{i % symbols}", event_id=f"sm-{i}") for i in range(50)]
    assert commit(settings, client, ticks, per_request=10) == [1] * 50
    for family in ("accepted", "backlog", "queued"):
        assert_declared(family, per_item(client, settings, family, 1))
    assert_declared("symbols", per_item(client, settings, "symbols", symbols))

    now = int(time.time() * 1000)
    spread = [make_tick(symbol="CI", ts=now - (300 - i) * 60_000, event_id=f"ci-{i}") for i in range(300)]
    windows.apply(client, settings, stored_batch(client, settings, "c" * 32, spread), spread)
    names = list(client.scan_iter(match=keys.sym("CI") + "c:*"))
    assert_declared("sym.candle_index", per_item(client, settings, "sym.candle_index", len(names)))

    worker = make_worker(context.configure(settings), name="budget-worker")
    Reaper(settings, client, worker).beat()
    assert_declared("worker", per_item(client, settings, "worker", 1))
    client.set(keys.reaper_lock, worker.name, px=int(settings.WORKER_DEAD_AFTER_S * 1000))  # as Reaper.sweep holds it
    assert_declared("reaper", per_item(client, settings, "reaper", 1))
    client.set(keys.ticks_wanted, b"1", ex=TICKS_WANTED_TTL_S)  # as realtime_gateway/demand.py sets it
    assert_declared("ticks.wanted", per_item(client, settings, "ticks.wanted", 1))

    # RTTM at the demo's shape: 18 partitions reporting every 2 s, trades through six stages, some in flight.
    settings.RTTM_FINALIZE_GRACE_S = 0
    seconds = 60
    metrics = [
        rttm_queue(now - seconds * 1000 + t * 2000, produced=t * 10, consumed=t * 9, partition=p)
        for t in range(seconds // 2)
        for p in range(18)
    ]
    done = pipeline_trades(300, seed=3, start=now - seconds * 1000)
    in_flight = [e for e in pipeline_trades(40, seed=4, start=now - 5_000) if e["event_key"][-1] in "012"]
    items = {TRADE.name: done + in_flight, QUEUE.name: metrics}
    assert rttm_apply.apply(client, settings, stored_batch(client, settings, "d" * 32, [], **items), items, now)
    assert_declared("rttm.active", per_item(client, settings, "rttm.active", 300 + 40))  # due, and in flight
    assert_declared("rttm.queues", per_item(client, settings, "rttm.queues", 18))
    assert_declared("rttm.queue_trend", per_item(client, settings, "rttm.queue_trend", seconds // 10))
    assert Ticker(settings, client, "budget-ticker").tick(now + 1000) is not None
    sketches = usage(client, settings.KEY_PREFIX)["rttm.latency"].keys
    assert sketches >= (seconds // 10) * 5  # per 10 s: end to end and the stages with a predecessor
    assert_declared("rttm.latency", per_item(client, settings, "rttm.latency", sketches))
    assert_declared("rttm.fixed", per_item(client, settings, "rttm.fixed", 1))
    assert unbounded_keys(settings) == []


def test_the_drainer_key_costs_what_it_declares_and_expires(settings: Settings, client: redis.Redis) -> None:
    """One key, the draining job's id, written by drain.lua with DRAIN_LOCK_S: it never outlives a drainer
    by more than that."""
    keys = Keys(settings.KEY_PREFIX)
    drain = register(client, "drain", "services.consumers")
    assert drain(keys=[keys.drainer, keys.pending], args=["a" * 32, int(DRAIN_LOCK_S * 1000), "stay"])[0] == 1
    assert_declared("drainer", per_item(client, settings, "drainer", 1))
    assert 0 < client.pttl(keys.drainer) <= DRAIN_LOCK_S * 1000
    assert unbounded_keys(settings) == []
