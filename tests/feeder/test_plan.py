"""Command-line options resolved against settings."""

from __future__ import annotations

import pytest

from services.common.settings import Settings
from services.feeder.__main__ import parse_args
from services.feeder.run import ConfigError, FeederOptions, Plan


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
