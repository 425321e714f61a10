"""The feeder process against the real ingest API (uvicorn on a real port, real Redis/Postgres)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import httpx

from harness.http import http
from harness.servers import serve
from services.common.embedded import free_port
from services.common.settings import Settings
from services.feeder.run import Stopper, run_feeder
from services.feeder.settings import FeederSettings
from services.orchestrator_api.app import create_app
from tests.feeder.process import FeederProcess
from tests.feeder.storage import flush_to_postgres

RUN_TIMEOUT_S = 30.0

Feeder = Callable[..., FeederProcess]


def test_count_200_is_acknowledged_in_full(api_url: str, feeder: Feeder, settings: Settings) -> None:
    run = feeder("--target-url", api_url, "--count", "200", "--tps", "400", "--seed", "7")
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert (summary["sent"], summary["acknowledged"], summary["accepted"]) == (200, 200, 200)
    assert (summary["duplicates"], summary["rejected"], summary["errors"]) == (0, 0, 0)
    assert (summary["requests"], summary["attempts"], summary["retries"]) == (200, 200, 0)
    assert summary["seed"] == 7
    assert summary["ack_latency_p50_ms"] > 0
    ids = run.acked_ids()
    assert len(ids) == 200
    assert len(set(ids)) == 200
    assert flush_to_postgres(settings, 200) == dict.fromkeys(ids, 1)


def test_the_same_seed_twice_is_new_ticks_not_duplicates(api_url: str, feeder: Feeder) -> None:
    first = feeder("--target-url", api_url, "--count", "50", "--tps", "500", "--seed", "3", "--quiet")
    assert first.wait(RUN_TIMEOUT_S) == 0
    second = feeder("--target-url", api_url, "--count", "50", "--tps", "500", "--seed", "3", "--quiet")
    assert second.wait(RUN_TIMEOUT_S) == 0
    assert (second.summary()["accepted"], second.summary()["duplicates"]) == (50, 0)
    assert not set(first.acked_ids()) & set(second.acked_ids())


def test_batch_mode_posts_arrays_and_is_acknowledged_in_full(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--count", "200", "--tps", "400", "--batch", "50")
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert (summary["sent"], summary["acknowledged"], summary["errors"]) == (200, 200, 0)
    assert (summary["requests"], summary["attempts"], summary["batch"]) == (4, 4, 50)
    assert len(set(run.acked_ids())) == 200


def test_a_partial_last_batch_is_sent(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--count", "120", "--tps", "600", "--batch", "50", "--quiet")
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert (summary["acknowledged"], summary["requests"]) == (120, 3)


def test_retries_reuse_event_ids_until_the_api_comes_up(feeder: Feeder, settings: Settings) -> None:
    port = free_port()  # nothing listens here yet
    run = feeder("--target-url", f"http://127.0.0.1:{port}", "--count", "50", "--tps", "100")
    run.wait_for_line('"feeder.retrying"', timeout=15)
    time.sleep(1.0)  # the outage under test: every tick has now failed to connect at least once
    with serve(create_app(settings), port):
        assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    # Every tick acknowledged exactly once: a retry of a tick the API already had would be a duplicate.
    assert summary["accepted"] + summary["duplicates"] == 50
    assert summary["accepted"] == 50
    assert (summary["errors"], summary["rejected"]) == (0, 0)
    assert summary["retries"] > 0
    assert summary["attempts"] == summary["requests"] + summary["retries"]
    ids = run.acked_ids()
    assert len(set(ids)) == len(ids) == 50
    assert flush_to_postgres(settings, 50) == dict.fromkeys(ids, 1)  # each tick stored once
    assert len(run.events("feeder.retrying")) == 1  # logged once per cause, not per tick


def test_wrong_credentials_are_errors_without_retries(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--count", "20", "--tps", "200", INGEST_PASSWORD="wrong-password-0123")
    assert run.wait(RUN_TIMEOUT_S) == 1
    summary = run.summary()
    assert (summary["acknowledged"], summary["errors"]) == (0, 20)
    assert summary["errors_by_cause"] == {"http_401": 20}
    assert (summary["attempts"], summary["retries"]) == (20, 0)
    assert run.acked_ids() == []
    assert len(run.events("feeder.request_failed")) == 1  # one line per distinct status


def test_sigterm_stops_scheduling_and_finishes_in_flight_sends(api_url: str, feeder: Feeder) -> None:
    run = feeder("--target-url", api_url, "--tps", "200")  # neither --count nor --duration: runs until stopped
    run.wait_for_line('"feeder.progress"', timeout=15)
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(RUN_TIMEOUT_S) == 0
    summary = run.summary()
    assert summary["interrupted"] is True
    assert summary["sent"] > 0
    assert summary["acknowledged"] == summary["sent"]
    assert summary["errors"] == 0
    assert len(run.acked_ids()) == summary["sent"]


def test_run_feeder_in_process_with_a_duration(api_url: str, settings: Settings) -> None:
    options = FeederSettings(duration=0.5, tps=200, target_url=api_url, batch=10, quiet=True, seed=1)

    async def go():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(run_feeder(settings, options, Stopper()), RUN_TIMEOUT_S)

    summary = asyncio.run(go())
    # 100 ticks are due in [0, 0.5 s) at 200/s; a busy machine sends fewer on time and counts the rest as missed.
    assert summary.sent + summary.missed == 100
    assert summary.sent > 0
    assert (summary.acknowledged, summary.errors, summary.exit_code) == (summary.sent, 0, 0)
    assert summary.interrupted is False


def test_health_and_metrics_while_running(api_url: str, feeder: Feeder) -> None:
    port = free_port()
    run = feeder("--target-url", api_url, "--duration", "30", "--tps", "50", "--quiet", "--metrics-port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        text = ""
        while 'mdstack_feeder_ticks{state="acknowledged"}' not in text and time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                text = http().get(f"{base}/metrics").text
            except httpx.ConnectError:
                continue
        acknowledged = next(line for line in text.splitlines() if line.startswith('mdstack_feeder_ticks{state="ack'))
        assert float(acknowledged.split()[-1]) > 0
        assert http().get(f"{base}/health/liveness").status_code == 200
        assert http().get(f"{base}/health/readiness").json() == {"status": "ready"}
    finally:
        run.process.send_signal(signal.SIGTERM)
        assert run.wait(RUN_TIMEOUT_S) == 0
