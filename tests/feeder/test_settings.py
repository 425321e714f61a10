"""The feeder's knobs: env vars, flags over them, and what is refused (naming the flag / env var)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common.settings import Settings
from services.feeder.settings import FeederSettings, parse_args
from services.feeder.trades import Latency, TradeConfig


def test_settings_apply_when_no_option_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SYMBOLS": "AAA, BBB", "TPS": "25", "TARGET_URL": "http://api:8000/", "FEEDER_BATCH": "3"}
    for name, value in {**env, "FEEDER_MAX_INFLIGHT": "512", "FEEDER_SEED": "9"}.items():
        monkeypatch.setenv(name, value)
    plan = parse_args([])
    assert (plan.symbol_list, plan.tps, plan.target_url, plan.batch, plan.seed) == (
        ["AAA", "BBB"],
        25.0,
        "http://api:8000",
        3,
        9,
    )
    assert (plan.max_inflight, plan.connections) == (512, 16)


def test_options_override_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"SYMBOLS": "A,B", "TPS": "3", "TARGET_URL": "http://x", "FEEDER_BATCH": "2"}.items():
        monkeypatch.setenv(name, value)
    argv = ["--symbols", "X", "--tps", "7.5", "--target-url", "http://other", "--batch", "50", "--connections", "4"]
    plan = parse_args(argv)
    assert (plan.symbol_list, plan.tps, plan.target_url, plan.batch, plan.connections) == (
        ["X"],
        7.5,
        "http://other",
        50,
        4,
    )


def test_connections_never_exceed_max_inflight() -> None:
    assert FeederSettings(max_inflight=4).connections == 4


def test_a_seed_is_drawn_when_none_is_given() -> None:
    seeds = {FeederSettings().seed for _ in range(5)}
    assert len(seeds) > 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SYMBOLS": " , "}, "no symbols"),
        ({"TPS": "0"}, "--tps / TPS: must be > 0"),
        ({"TPS": "inf"}, "--tps / TPS: must be > 0"),
        ({"FEEDER_BATCH": "0"}, "--batch / FEEDER_BATCH: must be > 0"),
        ({"FEEDER_MAX_INFLIGHT": "0"}, "--max-inflight / FEEDER_MAX_INFLIGHT: must be > 0"),
    ],
)
def test_bad_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit:
        parse_args([])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


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
    trades = FeederSettings().trades
    assert (trades.tps, trades.fail_rate, trades.error_rate, trades.stuck_rate) == (12.5, 0.1, 0.05, 0.01)
    assert (trades.partitions, trades.metrics_interval_ms) == (6, 500)
    assert trades.latencies["analytics-service"] == Latency(100.0, 0.2)
    assert trades.latencies["pms-core-service"] == Latency(15.0, 0.3)


def test_trade_defaults_and_flags_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRADE_TPS", "TRADE_FAIL_RATE", "TRADE_ERROR_RATE", "TRADE_STUCK_RATE", "TRADE_LATENCY_MS"):
        monkeypatch.delenv(name, raising=False)
    assert FeederSettings().trades == TradeConfig()
    monkeypatch.setenv("TRADE_TPS", "9")
    argv = ["--trade-tps", "0", "--fail-rate", "0.5", "--error-rate", "0.2", "--stuck-rate", "0.1"]
    trades = parse_args([*argv, "--trade-latency", "leaderboard=3", "--queue-metrics-interval", "1"]).trades
    assert (trades.tps, trades.fail_rate, trades.error_rate, trades.stuck_rate) == (0, 0.5, 0.2, 0.1)
    assert (trades.latencies["leaderboard-service"].median_ms, trades.metrics_interval_ms) == (3.0, 1000)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADE_FAIL_RATE": "0.7", "TRADE_ERROR_RATE": "0.7"}, "must not exceed 1"),
        ({"TRADE_PARTITIONS": "0"}, "must be > 0, got 0"),
        ({"TRADE_LATENCY_MS": "analytics=slow"}, "bad stage latency"),
    ],
)
def test_bad_trade_knobs_are_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        FeederSettings()


def test_a_malformed_trade_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADE_PARTITIONS", "many")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--trade-partitions / TRADE_PARTITIONS: Input should be a valid integer" in capsys.readouterr().err


def test_trade_cli_flags_parse() -> None:
    argv = [
        "--trade-tps",
        "0",
        "--fail-rate",
        "0.1",
        "--error-rate",
        "0",
        "--stuck-rate",
        "0.9",  # the three shares may add up to 1, no more
        "--trade-latency",
        "analytics=1",  # a stage the pipeline has: an unknown one is refused at parse time now
    ]
    args = vars(parse_args(argv))
    assert {k: args[k] for k in ("trade_tps", "fail_rate", "error_rate", "stuck_rate", "trade_latency")} == {
        "trade_tps": 0.0, "fail_rate": 0.1, "error_rate": 0.0, "stuck_rate": 0.9, "trade_latency": "analytics=1",
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


def test_the_feeder_knobs_left_the_shared_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBOLS", " AAA, BBB ,")
    monkeypatch.setenv("TPS", "12.5")
    assert (FeederSettings().symbol_list, FeederSettings().tps) == (["AAA", "BBB"], 12.5)
    shared = set(Settings.model_fields)
    assert not shared & {"SYMBOLS", "TPS", "TARGET_URL", "FEEDER_BATCH", "TRADE_TPS", "TRADE_LATENCY_MS"}
    assert set(FeederSettings.env_names()) & shared == {"METRICS_PORT"}  # the worker's and flusher's too


def test_every_knob_is_an_env_var_and_a_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEEDER_COUNT", "7")
    monkeypatch.setenv("FEEDER_QUIET", "true")
    monkeypatch.setenv("FEEDER_SUMMARY_JSON", str(tmp_path / "s.json"))
    plan = parse_args(["--trade-partitions", "4", "--source", "replay"])
    assert (plan.count, plan.quiet, plan.summary_json) == (7, True, tmp_path / "s.json")
    assert (plan.trade_partitions, plan.source) == (4, "replay")
    assert parse_args(["--count", "9"]).count == 9  # a flag wins over its env var
