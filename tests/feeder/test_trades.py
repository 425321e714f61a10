"""The trade simulation: reproducible, complete lifecycles, Kafka-like offsets, the configured mix."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from functools import cache
from itertools import count

import pytest

from services.common.events import DlqEventIn, ErrorEventIn, LogEventIn, QueueMetricIn, TradeEventIn
from services.feeder import pipeline as p
from services.feeder.trades import (
    Emitted,
    Latency,
    TradeConfig,
    TradeCounters,
    TradeSimulator,
    default_latencies,
    parse_latencies,
)

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MODELS = {"trade": TradeEventIn, "queue": QueueMetricIn, "dlq": DlqEventIn, "error": ErrorEventIn, "log": LogEventIn}
SERVICES = [s.service for s in p.STAGES]
TYPES = [s.event_type for s in p.STAGES]


def simulate(
    *, seed: int = 1, seconds: float = 60.0, steps: int = 1, **config: float
) -> tuple[list[Emitted], TradeCounters]:
    """Run a simulator over `seconds` of simulated time in `steps` calls to advance; ids are counters."""
    numbers = count()
    sim = TradeSimulator(
        TradeConfig(**config),  # type: ignore[arg-type]
        seed=seed,
        start_ms=START,
        event_id=lambda: f"e{next(numbers)}",
        run_tag="run",
    )
    events: list[Emitted] = []
    for i in range(1, steps + 1):
        events += sim.advance(START + round(seconds * 1000 * i / steps) - 1)
    return events, sim.counters


@cache
def story() -> tuple[list[Emitted], TradeCounters]:
    """A long run with a rich mix, shared by the tests that only read it."""
    return simulate(seed=7, seconds=400, tps=20, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05)


def trades_of(events: list[Emitted]) -> dict[str, list[dict]]:
    """Every event that names a trade, by trade_id, in emission order."""
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e.body.get("trade_id"):
            out[e.body["trade_id"]].append({"kind": e.kind, **e.body})
    return out


def trade_events(history: list[dict]) -> list[dict]:
    return [e for e in history if e["kind"] == "trade"]


def test_the_same_seed_gives_the_same_event_sequence() -> None:
    first, _ = simulate(seed=3, seconds=30, tps=20, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05)
    second, _ = simulate(seed=3, seconds=30, tps=20, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05)
    assert len(first) > 3000
    assert first == second


def test_a_different_seed_gives_a_different_sequence() -> None:
    first, _ = simulate(seed=3, seconds=10, tps=20)
    second, _ = simulate(seed=4, seconds=10, tps=20)
    assert [e.time_ms for e in first] != [e.time_ms for e in second]


def test_the_sequence_does_not_depend_on_how_often_advance_is_called() -> None:
    once, _ = simulate(seed=5, seconds=20, tps=50, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05)
    stepped, _ = simulate(seed=5, seconds=20, tps=50, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05, steps=997)
    assert once == stepped


def test_default_ids_are_fresh_per_run_and_the_seed_still_fixes_each_trades_story() -> None:
    config = TradeConfig(tps=20, fail_rate=0.2, error_rate=0.2, stuck_rate=0.1)
    a = TradeSimulator(config, seed=1, start_ms=START).advance(START + 60_000)
    b = TradeSimulator(config, seed=1, start_ms=START).advance(START + 60_000)
    assert len({e.body["event_id"] for e in a}) == len(a)
    assert not {e.body["event_id"] for e in a} & {e.body["event_id"] for e in b}
    tags = [{e.body["trade_id"].rsplit("-", 1)[0] for e in run if e.body.get("trade_id")} for run in (a, b)]
    assert len(tags[0]) == len(tags[1]) == 1
    assert tags[0] != tags[1]  # two runs never share a trade_id

    def paths(run: list[Emitted]) -> dict[str, list[tuple[str, str]]]:
        """Each trade's path by its number. Partitions follow the trade_id, so waits behind other
        trades (event times, PROCESSING_DELAY logs) differ between the runs; the path does not."""
        return {
            tid.rsplit("-", 1)[1]: [
                (e["service_name"], e.get("event_type") or e["kind"]) for e in history if e["kind"] != "log"
            ]
            for tid, history in trades_of(run).items()
            if history[0]["event_time"] < START + 55_000  # not cut short by the end of the run
        }

    assert paths(a) == paths(b)


def test_events_come_out_in_time_order_and_pass_the_api_schemas() -> None:
    events, _ = story()
    assert [e.time_ms for e in events] == sorted(e.time_ms for e in events)
    assert {e.kind for e in events} == set(MODELS)
    for e in events:
        assert e.body[MODELS[e.kind].TIME_FIELD] == e.time_ms
        MODELS[e.kind].model_validate(e.body, context={"now_ms": e.time_ms})


def test_trades_start_at_the_configured_rate() -> None:
    events, counters = simulate(seconds=10, tps=5)
    created = [e.time_ms - START for e in events if e.body.get("event_type") == p.TRADE_CREATED]
    assert created == [i * 200 for i in range(50)]
    assert counters.started == 50


def test_a_completed_trade_passes_all_six_stages_in_order() -> None:
    events, counters = story()
    completed = {
        tid: trade_events(h)
        for tid, h in trades_of(events).items()
        if trade_events(h)[-1]["event_type"] == p.LEADERBOARD_UPDATED
    }
    assert len(completed) == counters.completed > 5000
    for history in completed.values():
        assert [e["service_name"] for e in history] == SERVICES
        assert [e["event_type"] for e in history] == TYPES
        assert {e["event_status"] for e in history} == {p.SUCCESS}
        times = [e["event_time"] for e in history]
        assert all(a < b for a, b in zip(times, times[1:], strict=False))
        created, *consumed = history
        assert (created["topic_name"], created["partition"], created["offset"]) == (None, None, None)
        assert (created["source_queue"], created["target_queue"]) == (None, "trade-input")
        for stage, e in zip(p.CONSUMERS, consumed, strict=True):
            assert e["source_queue"] == e["topic_name"] == stage.consumes
            assert e["target_queue"] == stage.produces
            assert e["partition"] == consumed[0]["partition"]  # keyed by trade_id: one partition throughout
            assert e["offset"] >= 0


def test_a_failed_trade_gets_validation_failed_and_a_dlq_event_and_nothing_after() -> None:
    events, counters = story()
    failed = {tid: h for tid, h in trades_of(events).items() if any(e.get("event_status") == p.FAILED for e in h)}
    assert len(failed) == counters.failed > 500
    for history in failed.values():
        trade = trade_events(history)
        assert [e["event_type"] for e in trade] == [p.TRADE_CREATED, p.TRADE_CAPTURED, p.VALIDATION_FAILED]
        last = trade[-1]
        assert (last["service_name"], last["target_queue"]) == ("validation-service", p.DLQ_TOPIC)
        dlq = [e for e in history if e["kind"] == "dlq"]
        assert len(dlq) == 1
        assert (dlq[0]["service_name"], dlq[0]["topic_name"]) == ("validation-service", p.DLQ_TOPIC)
        assert dlq[0]["reason"] in p.FAIL_REASONS
        assert dlq[0]["event_time"] == last["event_time"]
        assert all(e["event_time"] <= last["event_time"] for e in history)
        assert history[-1]["kind"] == "dlq"  # nothing follows: no later stage, no error, no log


def test_a_stuck_trade_never_reaches_a_terminal_event() -> None:
    events, counters = story()
    histories = trades_of(events)
    ended = {tid for tid, h in histories.items() if trade_events(h)[-1]["event_type"] in p.TERMINAL_EVENT_TYPES}
    errors = {tid for tid, h in histories.items() if any(e["kind"] == "error" for e in h)}
    # Started but never ended, never hit an error: stuck (or still in flight at the end of the run).
    silent = set(histories) - ended - errors
    assert counters.stuck <= len(silent) <= counters.stuck + counters.in_flight
    stopped_at = Counter(len(trade_events(histories[tid])) for tid in silent)
    assert set(stopped_at) <= set(range(1, 6))  # from after TRADE_CREATED to before LEADERBOARD_UPDATED
    assert len(stopped_at) == 5  # stuck at every stage somewhere
    assert counters.in_flight < 10


def test_an_error_at_pms_core_is_an_error_event_and_the_trade_goes_on_or_stops() -> None:
    events, counters = story()
    went_on = stopped = late = 0
    error_types = Counter(e.body["error_type"] for e in events if e.kind == "error")
    assert error_types.most_common(1)[0][0] == "DB_TIMEOUT"
    assert set(error_types) == {t for t, _ in p.PMS_ERRORS}
    for history in trades_of(events).values():
        errors = [e for e in history if e["kind"] == "error"]
        if not errors:
            continue
        (error,) = errors
        if error["event_time"] > START + 398_000:  # its retry may still be in flight when the run ends
            late += 1
            continue
        assert error["service_name"] == "pms-core-service"
        assert (error["error_type"], error["error_message"]) in p.PMS_ERRORS
        logs = [e for e in history if e["kind"] == "log" and e["log_level"] == p.ERROR]
        assert [(e["log_category"], e["event_time"]) for e in logs] == [(p.PROCESSING_ERROR, error["event_time"])]
        types = [e["event_type"] for e in trade_events(history)]
        if p.POSITION_UPDATED in types:
            went_on += 1
            updated = next(e for e in trade_events(history) if e["event_type"] == p.POSITION_UPDATED)
            assert updated["event_time"] >= error["event_time"] + p.RETRY_BACKOFF_MS
        else:
            stopped += 1
            assert types == [p.TRADE_CREATED, p.TRADE_CAPTURED, p.VALIDATION_SUCCESS]
            assert all(e["event_time"] <= error["event_time"] for e in history)
    assert went_on + stopped + late == counters.errored
    assert stopped <= counters.stopped_after_error <= stopped + late
    assert went_on > stopped > 0


def test_offsets_increase_per_topic_partition_and_match_queue_metrics() -> None:
    events, _ = story()
    last: dict[tuple[str, int], int] = {}
    for e in events:
        if e.kind == "trade" and e.body["topic_name"] is not None:
            key = (e.body["topic_name"], e.body["partition"])
            assert e.body["offset"] > last.get(key, -1)
            last[key] = e.body["offset"]
    assert {t for t, _ in last} == {s.consumes for s in p.CONSUMERS}
    assert {part for _, part in last} == {0, 1, 2}
    # The newest snapshot of each partition has consumed past every offset a trade event showed.
    newest = {}
    for e in events:
        if e.kind == "queue":
            newest[e.body["topic_name"], e.body["partition"]] = e.body
    for key, offset in last.items():
        assert newest[key]["consumed_offset"] >= offset - 50  # the snapshot is at most 2 s old


def test_queue_metrics_cover_every_consumer_and_partition_and_lag_is_never_negative() -> None:
    events, _ = simulate(seed=2, seconds=120, tps=50, fail_rate=0.1, error_rate=0.1, stuck_rate=0.05)
    snapshots = [e.body for e in events if e.kind == "queue"]
    by_time = Counter(s["snapshot_time"] for s in snapshots)
    assert sorted(by_time) == [START + k * 2000 for k in range(60)]
    assert set(by_time.values()) == {5 * 3}  # five consumers, three partitions each
    previous: dict[tuple[str, str, int], dict] = {}
    lags = []
    for s in snapshots:
        assert s["service_name"] == next(c.service for c in p.CONSUMERS if c.consumes == s["topic_name"])
        lag = s["produced_offset"] - s["consumed_offset"]
        assert lag >= 0
        lags.append(lag)
        key = (s["service_name"], s["topic_name"], s["partition"])
        if key in previous:
            assert s["produced_offset"] >= previous[key]["produced_offset"]
            assert s["consumed_offset"] >= previous[key]["consumed_offset"]
        previous[key] = s
    assert max(lags) > 0  # trades in flight show up as lag
    assert sum(s["produced_offset"] for s in previous.values() if s["topic_name"] == "trade-input") >= 5900


@pytest.mark.slow  # statistics over many simulated trades
def test_the_mix_matches_the_configured_shares_over_many_trades() -> None:
    _, c = simulate(seed=11, seconds=4000, tps=10, metrics_interval_ms=10**9)
    assert c.started == 40_000
    assert c.failed / c.started == pytest.approx(p.DEFAULT_FAIL_RATE, rel=0.1)
    assert c.errored / c.started == pytest.approx(p.DEFAULT_ERROR_RATE, rel=0.1)
    assert c.stuck / c.started == pytest.approx(p.DEFAULT_STUCK_RATE, rel=0.25)
    assert c.stopped_after_error / c.errored == pytest.approx(p.ERROR_STOP_SHARE, rel=0.25)
    assert c.completed == c.started - c.failed - c.stuck - c.stopped_after_error - c.in_flight
    assert c.in_flight < 5


@pytest.mark.slow  # statistics over many simulated trades
def test_other_shares_are_honoured_too() -> None:
    _, c = simulate(seed=12, seconds=1000, tps=20, fail_rate=0.2, error_rate=0.1, stuck_rate=0.05)
    assert c.failed / c.started == pytest.approx(0.2, rel=0.05)
    assert c.errored / c.started == pytest.approx(0.1, rel=0.1)
    assert c.stuck / c.started == pytest.approx(0.05, rel=0.1)


def test_no_failures_errors_or_stuck_trades_when_the_rates_are_zero() -> None:
    events, c = simulate(seconds=200, tps=20, fail_rate=0, error_rate=0, stuck_rate=0)
    assert (c.failed, c.errored, c.stuck) == (0, 0, 0)
    assert c.completed == c.started - c.in_flight
    assert not [e for e in events if e.kind in ("dlq", "error")]


def test_stage_latencies_follow_the_configured_medians() -> None:
    latencies = default_latencies() | {"analytics-service": Latency(200.0, 0.3)}
    events, _ = simulate(seconds=500, tps=2, fail_rate=0, error_rate=0, stuck_rate=0, latencies=latencies)
    gaps: dict[str, list[int]] = defaultdict(list)
    for history in trades_of(events).values():
        trade = trade_events(history)
        for before, after in zip(trade, trade[1:], strict=False):
            gaps[after["service_name"]].append(after["event_time"] - before["event_time"])
    for service, values in gaps.items():
        median = sorted(values)[len(values) // 2]
        assert median == pytest.approx(latencies[service].median_ms, rel=0.15), service


def test_slow_stages_log_processing_delay_warnings() -> None:
    events, _ = story()
    histories = trades_of(events)
    warned = 0
    for history in histories.values():
        trade = trade_events(history)
        slow = {
            (after["service_name"], after["event_time"])
            for before, after in zip(trade, trade[1:], strict=False)
            if after["event_time"] - before["event_time"]
            > p.SLOW_FACTOR * default_latencies()[after["service_name"]].median_ms
        }
        warnings = {
            (e["service_name"], e["event_time"])
            for e in history
            if e["kind"] == "log" and e["log_category"] == p.PROCESSING_DELAY
        }
        assert all(
            e["log_level"] == p.WARN for e in history if e["kind"] == "log" and e["log_category"] == p.PROCESSING_DELAY
        )
        assert warnings == slow
        warned += len(warnings)
    assert warned > 100
    info = [e.body for e in events if e.kind == "log" and e.body["log_level"] == p.INFO]
    assert {e["log_category"] for e in info} == {p.TRADE_PROCESSED}
    assert {e["service_name"] for e in info} == {"leaderboard-service"}


def test_parse_latencies_overrides_named_stages() -> None:
    parsed = parse_latencies("analytics=120, pms-core-service=20:0.8", spread=0.4)
    assert parsed["analytics-service"] == Latency(120.0, 0.4)
    assert parsed["pms-core-service"] == Latency(20.0, 0.8)
    assert parsed["validation-service"] == Latency(8.0, 0.4)
    assert parse_latencies("") == default_latencies()


@pytest.mark.parametrize("text", ["nowhere=5", "analytics", "analytics=fast", "analytics=0", "analytics=5:-1"])
def test_parse_latencies_refuses_bad_input(text: str) -> None:
    with pytest.raises(ValueError, match="bad stage latency"):
        parse_latencies(text)


def test_latency_draws_are_at_least_one_ms_and_clamped() -> None:
    import random

    rng = random.Random(1)
    assert min(Latency(0.01, 0.5).draw(rng) for _ in range(100)) == 1
    assert max(Latency(1e9, 0.0).draw(rng) for _ in range(3)) == p.MAX_STAGE_LATENCY_MS
    assert math.isclose(Latency(40.0).slow_ms, 120.0)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (TradeConfig(tps=-1), "TRADE_TPS"),
        (TradeConfig(fail_rate=1.5), "TRADE_FAIL_RATE"),
        (TradeConfig(stuck_rate=-0.1), "TRADE_STUCK_RATE"),
        (TradeConfig(fail_rate=0.5, error_rate=0.4, stuck_rate=0.2), "must not exceed 1"),
        (TradeConfig(partitions=0), "TRADE_PARTITIONS"),
        (TradeConfig(metrics_interval_ms=0), "TRADE_METRICS_INTERVAL_S"),
    ],
)
def test_bad_trade_configs_are_named(config: TradeConfig, message: str) -> None:
    assert any(message in problem for problem in config.problems())


def test_the_defaults_are_sound() -> None:
    assert TradeConfig().problems() == []
    assert TradeConfig().tps == 5.0
