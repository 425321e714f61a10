"""Command-line options resolved against settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import Settings
from services.feeder.__main__ import parse_args
from services.feeder.plan import ConfigError, FeederOptions, Plan
from services.feeder.trades import Latency, TradeConfig


def test_settings_apply_when_no_option_is_given() -> None:
    settings = Settings(
        SYMBOLS="AAA, BBB", TPS=25, TARGET_URL="http://api:8000/", FEEDER_BATCH=3, FEEDER_MAX_INFLIGHT=512
    )
    plan = Plan.resolve(settings, FeederOptions(seed=9))
    assert (plan.symbols, plan.tps, plan.target_url, plan.batch, plan.seed) == (
        ["AAA", "BBB"],
        25.0,
        "http://api:8000",
        3,
        9,
    )
    assert (plan.max_inflight, plan.connections) == (512, 16)


def test_options_override_settings() -> None:
    options = FeederOptions(symbols=["X"], tps=7.5, target_url="http://other", batch=50, connections=4)
    plan = Plan.resolve(Settings(FEEDER_MAX_INFLIGHT=512), options)
    assert (plan.symbols, plan.tps, plan.target_url, plan.batch, plan.connections) == (
        ["X"],
        7.5,
        "http://other",
        50,
        4,
    )


def test_connections_never_exceed_max_inflight() -> None:
    assert Plan.resolve(Settings(FEEDER_MAX_INFLIGHT=4), FeederOptions()).connections == 4


def test_a_seed_is_drawn_when_none_is_given() -> None:
    seeds = {Plan.resolve(Settings(), FeederOptions()).seed for _ in range(5)}
    assert len(seeds) > 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(SYMBOLS=" , "), "no symbols"),
        (Settings(TPS=0), "TPS must be a positive number"),
        (Settings(FEEDER_BATCH=0), "batch size"),
        (Settings(FEEDER_MAX_INFLIGHT=0), "FEEDER_MAX_INFLIGHT"),
    ],
)
def test_bad_settings_are_refused(settings: Settings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Plan.resolve(settings, FeederOptions())


def test_cli_flags_parse() -> None:
    args = parse_args(["--count", "5", "--tps", "2.5", "--batch", "10", "--symbols", "A,B", "--quiet"])
    assert (args.count, args.tps, args.batch, args.symbols, args.quiet, args.duration) == (
        5,
        2.5,
        10,
        "A,B",
        True,
        None,
    )


@pytest.mark.parametrize("flag", ["--count", "--tps", "--batch", "--duration", "--connections"])
def test_cli_refuses_non_positive_numbers(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args([flag, "0"])
    assert "must be > 0" in capsys.readouterr().err


def test_trade_knobs_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TRADE_TPS": "12.5",
        "TRADE_FAIL_RATE": "0.1",
        "TRADE_ERROR_RATE": "0.05",
        "TRADE_STUCK_RATE": "0.01",
        "TRADE_PARTITIONS": "6",
        "TRADE_METRICS_INTERVAL_S": "0.5",
        "TRADE_LATENCY_MS": "analytics=100:0.2",
        "TRADE_LATENCY_SPREAD": "0.3",
    }.items():
        monkeypatch.setenv(name, value)
    trades = Plan.resolve(Settings(), FeederOptions()).trades
    assert (trades.tps, trades.fail_rate, trades.error_rate, trades.stuck_rate) == (12.5, 0.1, 0.05, 0.01)
    assert (trades.partitions, trades.metrics_interval_ms) == (6, 500)
    assert trades.latencies["analytics-service"] == Latency(100.0, 0.2)
    assert trades.latencies["pms-core-service"] == Latency(15.0, 0.3)


def test_trade_defaults_and_flags_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRADE_TPS", "TRADE_FAIL_RATE", "TRADE_ERROR_RATE", "TRADE_STUCK_RATE", "TRADE_LATENCY_MS"):
        monkeypatch.delenv(name, raising=False)
    assert Plan.resolve(Settings(), FeederOptions()).trades == TradeConfig()
    monkeypatch.setenv("TRADE_TPS", "9")
    options = FeederOptions(
        trade_tps=0,
        fail_rate=0.5,
        error_rate=0.2,
        stuck_rate=0.1,
        trade_latency="leaderboard=3",
        queue_metrics_interval_s=1,
    )
    trades = Plan.resolve(Settings(), options).trades
    assert (trades.tps, trades.fail_rate, trades.error_rate, trades.stuck_rate) == (0, 0.5, 0.2, 0.1)
    assert (trades.latencies["leaderboard-service"].median_ms, trades.metrics_interval_ms) == (3.0, 1000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADE_FAIL_RATE": "0.7", "TRADE_ERROR_RATE": "0.7"}, "must not exceed 1"),
        ({"TRADE_PARTITIONS": "0"}, "TRADE_PARTITIONS must be at least 1"),
        ({"TRADE_LATENCY_MS": "analytics=slow"}, "bad stage latency"),
    ],
)
def test_bad_trade_knobs_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Plan.resolve(Settings(), FeederOptions())


def test_a_malformed_trade_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADE_PARTITIONS", "many")
    with pytest.raises(ValidationError, match="TRADE_PARTITIONS"):
        Settings()


def test_trade_cli_flags_parse() -> None:
    argv = [
        "--trade-tps",
        "0",
        "--fail-rate",
        "0.1",
        "--error-rate",
        "0",
        "--stuck-rate",
        "1",
        "--trade-latency",
        "x=1",
    ]
    args = vars(parse_args(argv))
    assert {k: args[k] for k in ("trade_tps", "fail_rate", "error_rate", "stuck_rate", "trade_latency")} == {
        "trade_tps": 0.0, "fail_rate": 0.1, "error_rate": 0.0, "stuck_rate": 1.0, "trade_latency": "x=1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--trade-tps", "-1", "must be >= 0"),
        ("--fail-rate", "1.5", "between 0 and 1"),
        ("--stuck-rate", "-0.1", "between 0 and 1"),
        ("--queue-metrics-interval", "0", "must be > 0"),
    ],
)
def test_trade_cli_refuses_out_of_range_values(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args([flag, value])
    assert message in capsys.readouterr().err
