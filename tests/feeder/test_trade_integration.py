"""The trade simulation in the feeder process against the real ingest API, down to Postgres."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from services.common.settings import Settings
from services.feeder.pipeline import EVENT_KINDS
from tests.feeder.process import FeederProcess
from tests.feeder.storage import flush_kinds_to_postgres, truncate

pytestmark = pytest.mark.e2e  # `python -m services.feeder` processes
RUN_TIMEOUT_S = 30.0
# Rich mix so that every kind of event shows up in a short run.
MIX = ("--fail-rate", "0.1", "--error-rate", "0.1", "--stuck-rate", "0.05")

Feeder = Callable[..., FeederProcess]


@pytest.fixture
def clean_rttm_tables(settings: Settings) -> None:
    """The session database is shared by the suite: start from empty RTTM tables."""
    truncate(settings, list(EVENT_KINDS))


@pytest.mark.usefixtures("clean_rttm_tables")
def test_two_seconds_of_trades_are_acknowledged_and_stored_exactly_once(
    api_url: str, feeder: Feeder, settings: Settings
) -> None:
    run = feeder(
        *("--target-url", api_url, "--duration", "2", "--tps", "10", "--trade-tps", "50", "--seed", "21", *MIX),
        *("--queue-metrics-interval", "0.5"),
    )
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert summary["errors"] == summary["rejected"] == 0
    assert summary["trade_tps_target"] == 50
    trades = summary["trades"]
    assert trades["started"] == 100  # due in [0, 2 s) at 50/s
    assert trades["completed"] > 50
    assert trades["failed"] > 0
    assert trades["errored"] > 0
    assert trades["started"] == (
        trades["completed"] + trades["failed"] + trades["stuck"] + trades["stopped_after_error"] + trades["in_flight"]
    )
    events = summary["trade_events"]
    assert set(events) == set(EVENT_KINDS)
    for kind, counts in events.items():
        assert counts["sent"] > 0, kind
        assert counts["acknowledged"] == counts["accepted"] == counts["sent"], kind
        assert (counts["duplicates"], counts["rejected"], counts["errors"], counts["retries"]) == (0, 0, 0, 0), kind
    assert events["trade"]["sent"] >= 5 * trades["completed"]
    assert events["dlq"]["sent"] == trades["failed"]
    assert events["error"]["sent"] == trades["errored"]
    assert events["queue"]["sent"] == 4 * 15  # snapshots at 0, 0.5, 1 and 1.5 s: 5 consumers x 3 partitions

    acked = run.acked_events()
    assert {kind: len(ids) for kind, ids in acked.items()} == {k: c["sent"] for k, c in events.items()}
    rows = flush_kinds_to_postgres(settings, {kind: len(ids) for kind, ids in acked.items()})
    for kind, ids in acked.items():
        assert rows[kind] == dict.fromkeys(ids, 1), kind

    progress = run.events("feeder.progress")
    assert progress
    assert progress[-1]["trades_started"] > 0


def test_trade_tps_zero_turns_the_simulation_off(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--count", "20", "--tps", "200", "--trade-tps", "0", "--quiet")
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert summary["acknowledged"] == 20
    assert (summary["trade_tps_target"], summary["trades"], summary["trade_events"]) == (0, {}, {})
    assert run.acked_events() == {}


def test_sigterm_ends_the_trade_simulation_with_the_run(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--tps", "20", TRADE_TPS="40")  # runs until stopped
    run.wait_for_line('"feeder.progress"', timeout=15)
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert summary["interrupted"] is True
    assert summary["trades"]["started"] > 0
    for kind, counts in summary["trade_events"].items():
        assert counts["acknowledged"] == counts["sent"], kind
        assert counts["errors"] == 0, kind
    assert sum(len(ids) for ids in run.acked_events().values()) == sum(
        c["sent"] for c in summary["trade_events"].values()
    )
