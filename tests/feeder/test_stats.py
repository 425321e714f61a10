"""Counters, percentile maths and the summary."""

from __future__ import annotations

import pytest

from services.feeder.pipeline import EVENT_KINDS
from services.feeder.stats import FeederStats, Summary, TradeStats, status_line
from services.feeder.trades import TradeCounters


def summarize(stats: FeederStats, *, elapsed_s: float = 1.0, trades: TradeStats | None = None) -> Summary:
    return stats.summary(
        elapsed_s=elapsed_s,
        tps_target=500,
        batch=1,
        max_inflight=512,
        connections=16,
        symbols=["A"],
        seed=1,
        target_url="http://x",
        interrupted=False,
        trades=trades,
        trade_tps_target=5.0 if trades else 0.0,
    )


def test_summary_percentiles_from_known_latencies() -> None:
    stats = FeederStats()
    for ms in range(1, 1001):  # 1 ms .. 1000 ms, one tick each
        stats.record_ack(accepted=1, duplicates=0, rejected=0, latency_s=ms / 1000)
    s = summarize(stats, elapsed_s=2.0)
    # HdrHistogram with 3 significant digits: values are exact to 0.1%.
    assert s.ack_latency_p50_ms == pytest.approx(500, rel=1e-3)
    assert s.ack_latency_p95_ms == pytest.approx(950, rel=1e-3)
    assert s.ack_latency_p99_ms == pytest.approx(990, rel=1e-3)
    assert s.ack_latency_max_ms == pytest.approx(1000, rel=1e-3)
    assert s.acknowledged == 1000
    assert s.achieved_tps == 500.0


def test_a_batch_answer_weighs_latency_by_acknowledged_ticks() -> None:
    stats = FeederStats()
    stats.record_ack(accepted=9, duplicates=0, rejected=0, latency_s=0.010)
    stats.record_ack(accepted=0, duplicates=1, rejected=0, latency_s=0.500)
    assert stats.total.get_total_count() == 10
    s = summarize(stats)
    assert s.ack_latency_p50_ms == pytest.approx(10, rel=1e-3)
    assert s.ack_latency_max_ms == pytest.approx(500, rel=1e-3)


def test_counters_add_up_and_errors_are_grouped_by_cause() -> None:
    stats = FeederStats(sent=10)
    stats.record_ack(accepted=5, duplicates=2, rejected=1, latency_s=0.001)
    stats.record_error("http_401", 1)
    stats.record_error("ConnectError", 1)
    stats.record_error("http_401", 1)
    s = summarize(stats)
    assert (s.sent, s.acknowledged, s.accepted, s.duplicates, s.rejected, s.errors) == (10, 7, 5, 2, 1, 3)
    assert s.errors_by_cause == {"http_401": 2, "ConnectError": 1}
    assert s.exit_code == 1


def test_a_clean_run_exits_zero_and_an_empty_one_reports_zero_latency() -> None:
    s = summarize(FeederStats(), elapsed_s=0.0)
    assert s.exit_code == 0
    assert (s.ack_latency_p50_ms, s.ack_latency_max_ms, s.achieved_tps) == (0.0, 0.0, 0.0)


def test_summary_dict_has_the_documented_keys() -> None:
    s = summarize(FeederStats())
    assert set(s.as_dict()) == {
        "sent", "acknowledged", "accepted", "duplicates", "rejected", "errors", "errors_by_cause",
        "requests", "attempts", "retries", "behind", "missed", "max_lag_ms", "elapsed_s", "achieved_tps",
        "ack_latency_p50_ms", "ack_latency_p95_ms", "ack_latency_p99_ms", "ack_latency_max_ms",
        "tps_target", "batch", "max_inflight", "connections", "symbols", "seed", "target_url", "interrupted",
        "trade_tps_target", "trades", "trade_events",
    }  # fmt: skip


def test_progress_reports_the_window_since_the_previous_line() -> None:
    stats = FeederStats(_window_started=100.0)
    stats.sent = 50
    stats.record_ack(accepted=50, duplicates=0, rejected=0, latency_s=0.002)
    first = stats.progress(now=100.5)
    assert first["rate"] == 100.0
    assert first["p99_ms"] == pytest.approx(2, rel=1e-3)
    second = stats.progress(now=101.5)
    assert second["rate"] == 0.0
    assert second["p99_ms"] == 0.0  # the window was reset
    assert stats.total.get_total_count() == 50  # the run's histogram was not
    assert "sent 50" in status_line(second)


def test_latency_beyond_the_histogram_range_is_clamped_not_lost() -> None:
    stats = FeederStats()
    stats.record_ack(accepted=1, duplicates=0, rejected=0, latency_s=600.0)
    stats.record_ack(accepted=1, duplicates=0, rejected=0, latency_s=0.0)
    assert stats.total.get_total_count() == 2


def test_trade_counters_and_events_per_kind_are_in_the_summary_and_progress() -> None:
    trades = TradeStats(TradeCounters(started=10, completed=6, failed=1, stuck=1, errored=2, stopped_after_error=1))
    trades.events["trade"].sent = 40
    trades.events["trade"].requests = 3
    trades.events["trade"].record_ack(accepted=39, duplicates=1, rejected=0, latency_s=0.004)
    trades.events["dlq"].sent = 1
    trades.events["dlq"].record_error("http_503", 1)
    s = summarize(FeederStats(), trades=trades)
    assert s.trade_tps_target == 5.0
    assert s.trades == {
        "started": 10, "completed": 6, "failed": 1, "stuck": 1, "errored": 2, "stopped_after_error": 1,
        "in_flight": 1, "behind": 0,
    }  # fmt: skip
    assert set(s.trade_events) == set(EVENT_KINDS)
    assert s.trade_events["trade"] == {
        "sent": 40, "acknowledged": 40, "accepted": 39, "duplicates": 1, "rejected": 0, "errors": 0,
        "errors_by_cause": {}, "requests": 3, "attempts": 0, "retries": 0,
        "ack_latency_p50_ms": pytest.approx(4, rel=1e-3), "ack_latency_p99_ms": pytest.approx(4, rel=1e-3),
    }  # fmt: skip
    assert s.trade_events["dlq"]["errors_by_cause"] == {"http_503": 1}
    assert s.exit_code == 1  # a lost trade-pipeline event fails the run like a lost tick
    line = {**FeederStats().progress(), **trades.progress()}
    assert {k: v for k, v in line.items() if k.startswith("trade")} == {
        "trades_started": 10, "trades_completed": 6, "trades_failed": 1, "trades_stuck": 1, "trades_errored": 2,
        "trade_events_sent": 41, "trade_events_acked": 40, "trade_events_errors": 1,
    }  # fmt: skip
    assert "trades 10 done 6 failed 1 stuck 1  events 40/41 errors 1" in status_line(line)


def test_a_run_without_trades_has_empty_trade_blocks_and_a_plain_status_line() -> None:
    s = summarize(FeederStats())
    assert (s.trade_tps_target, s.trades, s.trade_events) == (0.0, {}, {})
    assert "trades" not in status_line(FeederStats().progress())
