"""Postgres stopped, Redis killed and restarted, a burst far above capacity: with the feeder running throughout."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from harness.http import http
from harness.polling import until
from services.common.embedded import EmbeddedPostgres, EmbeddedRedis
from services.common.settings import Settings
from tests.factories import make_tick
from tests.faults.harness import FaultRun, feeder_statuses, own_settings, running


def readiness(url: str) -> tuple[int, dict]:
    try:
        answer = http().get(f"{url}/health/readiness", timeout=3)
    except httpx.HTTPError as exc:
        return 0, {"error": str(exc)}
    return answer.status_code, answer.json()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_postgres_stopped_then_started(settings: Settings, tmp_path: Path, private_postgres: EmbeddedPostgres) -> None:
    own = own_settings(settings, PG_URL=private_postgres.url)
    with running(own, tmp_path) as stack:
        run = FaultRun(stack, tmp_path, "postgres_stopped_then_started")
        run.start_feeder(tps=200, duration=9)
        run.wait_accepted()
        private_postgres.stop()
        down_at = time.monotonic()
        until(lambda: readiness(stack.health["flusher"])[0] == 503, what="the flusher reports Postgres down")
        until(lambda: readiness(stack.api_url)[1].get("status") == "degraded", what="the API reports degraded")
        until(run.unflushed, what="ticks buffered in Redis")
        flusher = readiness(stack.health["flusher"])
        api = readiness(stack.api_url)
        buffered = run.unflushed()
        time.sleep(2)  # the outage under test goes on while the feeder sends
        private_postgres.start()
        down_s = time.monotonic() - down_at

        assert flusher[0] == 503
        assert flusher[1]["problems"][0].startswith("postgres:")
        assert api[0] == 200  # ingest needs only Redis: still taking ticks
        assert api[1]["status"] == "degraded"
        assert api[1]["degraded"][0].startswith("postgres:")
        assert buffered > 0  # held in Redis meanwhile
        result = run.verify(postgres_down_s=round(down_s, 1), buffered_while_down=buffered)
    assert result["feeder_errors"] == {}  # nothing refused: ingest never needed Postgres


def test_redis_killed_and_restarted(settings: Settings, tmp_path: Path, private_redis: EmbeddedRedis) -> None:
    own = own_settings(settings, REDIS_URL=private_redis.url)
    with running(own, tmp_path) as stack:
        run = FaultRun(stack, tmp_path, "redis_killed_and_restarted")
        run.start_feeder(tps=200, duration=9)
        run.wait_accepted()
        assert private_redis.process is not None
        private_redis.process.kill()  # SIGKILL: only what the AOF holds comes back
        private_redis.process.wait()
        down_at = time.monotonic()
        until(lambda: readiness(stack.api_url)[0] == 503, what="the API reports Redis down")
        api = readiness(stack.api_url)
        refused = http().post(
            f"{stack.api_url}/ingest/tick",
            json=make_tick(symbol="FLTAAA", event_id="during-outage"),
            auth=(own.INGEST_USERNAME, own.INGEST_PASSWORD),
            timeout=10,
        )
        time.sleep(1.5)  # the outage under test goes on: the feeder's sends are refused and retried
        private_redis.start()
        down_s = time.monotonic() - down_at

        assert api[0] == 503
        assert any(p.startswith("redis:") for p in api[1]["problems"])
        assert refused.status_code == 503  # not acknowledged: it could not be stored
        assert refused.headers["retry-after"]
        result = run.verify(redis_down_s=round(down_s, 1))
    assert result["feeder_retries"] > 0  # the feeder's retries carried the ticks over the outage
    assert result["feeder_errors"] == {}


@pytest.mark.parametrize("bound", [2000])
def test_burst_far_above_capacity_is_refused_at_the_bound(settings: Settings, tmp_path: Path, bound: int) -> None:
    """The flusher is stopped, so the Postgres side can take nothing: the backlog grows to its bound, then ingest
    answers 503 with Retry-After; nothing accepted is lost and memory stays bounded."""
    pending_bound = 1000
    with running(settings, tmp_path, INGEST_MAX_BACKLOG=str(bound), INGEST_MAX_PENDING=str(pending_bound)) as stack:
        run = FaultRun(stack, tmp_path, "burst_far_above_capacity")
        stack.stop("flusher")
        api_pid = stack.processes["api"].pid
        rss_before = rss(api_pid)
        run.start_feeder(tps=4000, duration=6, batch=50)
        peak_backlog, peak_rss, refused = 0, rss_before, None
        while run.feeder is not None and run.feeder.poll() is None:
            peak_backlog = max(peak_backlog, run.unflushed())
            peak_rss = max(peak_rss, rss(api_pid))
            if refused is None:
                answer = http().post(
                    f"{stack.api_url}/ingest/tick",
                    json=make_tick(symbol="FLTAAA", event_id="probe"),
                    auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD),
                    timeout=10,
                )
                refused = answer if answer.status_code == 503 else None
            time.sleep(0.1)
        statuses = feeder_statuses(stack)
        stack.restart("flusher")
        result = run.verify(
            bound=bound,
            peak_backlog=peak_backlog,
            refused_503=statuses["503"],
            api_rss_growth_mb=round((peak_rss - rss_before) / 2**20, 1),
        )

    assert refused is not None, "ingest never refused"
    assert refused.headers["retry-after"] == str(settings.INGEST_RETRY_AFTER_S)
    assert f"INGEST_MAX_BACKLOG={bound}" in refused.json()["detail"]
    assert statuses["503"] > 0
    assert bound <= peak_backlog <= bound + pending_bound  # one round of admitted requests may overshoot
    assert peak_rss - rss_before < 64 * 2**20
    assert result["sent"] > 2 * result["acknowledged"]  # far above what was taken
