"""Counters, percentile maths and the summary."""

from __future__ import annotations

import pytest

from services.feeder.stats import FeederStats, Summary, status_line


def summarize(stats: FeederStats, *, elapsed_s: float = 1.0) -> Summary:
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
