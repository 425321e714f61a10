"""Stopping a run: a first stop request drains, a second one cancels what is still in flight."""

from __future__ import annotations

import asyncio

from services.common.embedded import free_port
from services.common.settings import Settings
from services.feeder.run import Stopper, run_feeder
from services.feeder.sender import RetryPolicy
from services.feeder.settings import FeederSettings
from services.feeder.stats import Summary


def test_a_second_stop_cancels_sends_stuck_in_retries() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every send keeps retrying
    options = FeederSettings(tps=100, target_url=dead, quiet=True, seed=1)

    async def go() -> Summary:
        stopper = Stopper()
        run = asyncio.create_task(run_feeder(Settings(), options, stopper))
        # Nothing to poll inside run_feeder: the pauses let sends start and sit in their retries (the
        # assertions below check they did), which is the state a second stop must cut short.
        await asyncio.sleep(0.3)
        stopper.request_stop()
        await asyncio.sleep(0.2)
        stopper.request_stop()
        return await asyncio.wait_for(run, 10)

    summary = asyncio.run(go())
    assert summary.interrupted is True
    assert summary.sent > 0
    assert summary.acknowledged == 0
    assert summary.errors == summary.sent
    assert summary.errors_by_cause == {"cancelled": summary.sent}
    assert summary.retries > 0
    assert summary.exit_code == 1


def test_a_count_run_against_nothing_gives_up_after_bounded_retries() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    policy = RetryPolicy(max_attempts=3, initial_s=0.01, max_backoff_s=0.02, jitter_s=0.01)
    options = FeederSettings(count=5, tps=100, target_url=dead, quiet=True)
    summary = asyncio.run(asyncio.wait_for(run_feeder(Settings(), options, Stopper(), retry=policy), 10))
    assert (summary.sent, summary.errors, summary.attempts, summary.retries) == (5, 5, 15, 10)
    assert summary.errors_by_cause == {"ConnectError": 5}
    assert summary.interrupted is False
