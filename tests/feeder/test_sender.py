"""The sender's retry policy, against the real API (uvicorn on a free port, real Redis).

Transient answers come from the API's real failure modes: 503 + Retry-After
while its Redis is down, connection refused while it is not listening.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from harness.http import client_tls
from harness.servers import serve
from services.common.embedded import EmbeddedRedis, free_port
from services.common.keys import Keys
from services.common.settings import Settings
from services.feeder.sender import (
    Outcome,
    PermanentError,
    RetryPolicy,
    Sender,
    backoff_s,
    parse_answer,
    parse_retry_after,
)
from services.feeder.stats import FeederStats
from services.orchestrator_api.app import create_app
from tests.factories import make_tick

FAST = RetryPolicy(max_attempts=4, max_total_s=5.0, initial_s=0.001, max_backoff_s=0.01, jitter_s=0.001)


def send(url: str, settings: Settings, ticks: list[dict], policy: RetryPolicy = FAST) -> tuple[Outcome, FeederStats]:
    stats = FeederStats()

    async def go() -> Outcome:
        auth = (settings.INGEST_USERNAME, settings.INGEST_PASSWORD)
        async with httpx.AsyncClient(base_url=url, auth=auth, verify=client_tls()) as client:
            return await asyncio.wait_for(Sender(client, stats, policy).post(ticks), 30)

    return asyncio.run(go()), stats


def stored_event_ids(settings: Settings) -> list[str]:
    client = redis.Redis.from_url(settings.redis_url)
    entries = client.xrange(Keys(settings.KEY_PREFIX).flush_stream)
    client.close()
    return [t["event_id"] for _, fields in entries for t in orjson.loads(fields[b"items"])["tick"]]


def test_one_tick_and_a_batch_are_acknowledged(settings: Settings) -> None:
    ticks = [make_tick() for _ in range(3)]
    with serve(create_app(settings)) as url:
        one, one_stats = send(url, settings, ticks[:1])
        batch, _ = send(url, settings, [*ticks, {**ticks[0], "price": -1.0, "event_id": "bad"}])

    assert one == Outcome(accepted=1, duplicates=0)
    assert (one_stats.attempts, one_stats.retries) == (1, 0)
    assert batch == Outcome(accepted=2, duplicates=1, rejected=(3,))
    assert sorted(stored_event_ids(settings)) == sorted(t["event_id"] for t in ticks)


@pytest.mark.e2e
def test_503_while_redis_is_down_is_retried_after_retry_after_with_the_same_event_ids(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    down = settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    ticks = [make_tick(), make_tick()]
    policy = RetryPolicy(max_attempts=8, max_total_s=20.0, initial_s=0.05, max_backoff_s=0.2, jitter_s=0.0)
    later = EmbeddedRedis(tmp_path, port, appendonly=False)
    starter = threading.Timer(1.0, later.start)
    with serve(create_app(down)) as url:
        started = time.monotonic()
        starter.start()
        try:
            outcome, stats = send(url, down, ticks, policy)
            elapsed = time.monotonic() - started
            stored = stored_event_ids(down)
        finally:
            starter.join()
            later.stop()

    assert outcome == Outcome(accepted=2, duplicates=0)
    assert stats.retries >= 1
    assert elapsed >= 1.0  # the API's Retry-After: 1 was honoured, not the 50 ms back-off
    assert sorted(stored) == sorted(t["event_id"] for t in ticks)


@pytest.mark.parametrize("change", [{"price": -1.0}, {"symbol": "lower"}])
def test_invalid_ticks_are_not_retried(settings: Settings, change: dict) -> None:
    with serve(create_app(settings)) as url:
        outcome, stats = send(url, settings, [{**make_tick(), **change}])
    assert outcome == Outcome(error="http_422")
    assert (stats.attempts, stats.retries) == (1, 0)


def test_wrong_credentials_are_not_retried(settings: Settings) -> None:
    wrong = settings.model_copy(update={"INGEST_PASSWORD": "wrong-password-0123"})
    with serve(create_app(settings)) as url:
        outcome, stats = send(url, wrong, [make_tick()])
    assert outcome == Outcome(error="http_401")
    assert (stats.attempts, stats.retries) == (1, 0)


def test_connection_refused_is_retried_up_to_the_attempt_limit(settings: Settings) -> None:
    outcome, stats = send(f"http://127.0.0.1:{free_port()}", settings, [make_tick()])
    assert outcome.error is not None
    assert (stats.attempts, stats.retries) == (4, 3)


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1_767_225_600.0) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1_767_225_700.0) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_s=0.1, max_backoff_s=1.0, jitter_s=0.0)
    assert [backoff_s(policy, n) for n in (1, 2, 3, 4, 5, 50)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    jittered = RetryPolicy(initial_s=0.1, max_backoff_s=1.0, jitter_s=0.05)
    assert all(0.1 <= backoff_s(jittered, 1) <= 0.15 for _ in range(100))


def test_a_malformed_answer_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="bad_answer"):
        parse_answer(httpx.Response(200, content=b"<html>"))
    with pytest.raises(PermanentError, match="bad_answer"):
        parse_answer(httpx.Response(200, json={"ok": True}))
