"""RQ workers end to end against a real API: views, several workers, retries, failed registry; readiness and
stop requests around RQ's own signal handlers."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from prometheus_client import REGISTRY
from rq.registry import FailedJobRegistry

from harness.http import http
from harness.servers import serve
from harness.stack import Stack
from services.common.embedded import free_port
from services.common.jobs import job_queue
from services.common.keys import Keys
from services.common.settings import Settings
from services.consumers import context, metrics
from services.consumers.tasks import count_rttm
from services.consumers.worker import make_worker, readiness
from services.orchestrator_api.app import create_app
from tests.consumers.test_calc import T0, assert_same_view, comparable, reference, tick


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    port = free_port()
    settings.API_PORT = port
    with serve(create_app(settings), port) as url:
        yield url


def post(url: str, settings: Settings, ticks: list[dict]) -> dict:
    body = [{k: t[k] for k in ("event_id", "symbol", "price", "volume", "source", "ts")} for t in ticks]
    response = http().post(
        f"{url}/ingest/ticks", json=body, auth=(settings.INGEST_USERNAME, settings.INGEST_PASSWORD), timeout=10
    )
    response.raise_for_status()
    return response.json()


def work(settings: Settings) -> None:
    make_worker(context.configure(settings)).work(burst=True)


def view(url: str, symbol: str) -> dict:
    return http().get(f"{url}/symbols/{symbol}").json()


def market(n: int, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC")) -> list[dict]:
    return [
        tick(i, T0 + i * 397 % 90_000, 100 + (i * 7919 % 1000) / 100, (i % 5) / 2, symbols[i % 3]) for i in range(n)
    ]


def test_worker_posts_views_that_match_the_reference(api_url: str, settings: Settings) -> None:
    ticks = market(90)
    # Out of order, in several requests, with duplicates the API must drop.
    post(api_url, settings, ticks[60:])
    post(api_url, settings, ticks[:30] + ticks[60:65])
    post(api_url, settings, ticks[30:60])

    work(settings)

    for symbol in ("AAA", "BBB", "CCC"):
        expected = reference([t for t in ticks if t["symbol"] == symbol])
        assert_same_view(comparable(view(api_url, symbol)), expected)
    listed = http().get(f"{api_url}/symbols").json()["symbols"]
    assert [s["symbol"] for s in listed] == ["AAA", "BBB", "CCC"]
    assert job_queue(settings, redis.Redis.from_url(settings.redis_url)).count == 0
    leftovers = list(
        redis.Redis.from_url(settings.redis_url).scan_iter(match=Keys(settings.KEY_PREFIX).batch_prefix + "*")
    )
    assert leftovers == []


def test_views_are_published_as_symbol_updated(api_url: str, settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(settings.PUBSUB_CHANNEL)
    pubsub.get_message(timeout=1)
    post(api_url, settings, market(6))

    work(settings)

    updates = []
    while (message := pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is not None:
        envelope = orjson.loads(message["data"])
        if envelope["type"] == "symbol.updated":
            updates.append(envelope)
    assert sorted(u["symbol"] for u in updates) == ["AAA", "BBB", "CCC"]
    assert all(u["data"]["view"]["version"] == 1 and u["id"] for u in updates)
    pubsub.close()


@pytest.mark.e2e
def test_several_worker_processes_give_the_same_views_as_one(api_url: str, settings: Settings, tmp_path: Path) -> None:
    ticks = market(600)
    for i in range(0, 600, 20):  # 30 jobs
        post(api_url, settings, ticks[i : i + 20])
    stack = Stack(settings, tmp_path)
    workers = [stack.start(f"worker-{i}", "--burst", service="worker", API_URL=api_url) for i in range(3)]
    assert [w.wait(60) for w in workers] == [0, 0, 0], stack.logs()

    for symbol in ("AAA", "BBB", "CCC"):
        got = view(api_url, symbol)
        assert_same_view(comparable(got), reference([t for t in ticks if t["symbol"] == symbol]))
        assert got["version"] == 30  # every job touched every symbol once


def test_failing_job_is_retried_then_lands_in_failed_registry(api_url: str, settings: Settings) -> None:
    post(api_url, settings, market(3))
    broken = settings.model_copy(update={"API_URL": f"http://127.0.0.1:{free_port()}"})  # nobody listens there
    failed_before = REGISTRY.get_sample_value("mdstack_worker_jobs_total", {"outcome": "failed"}) or 0.0

    work(broken)

    client = redis.Redis.from_url(settings.redis_url)
    registry = FailedJobRegistry(settings.QUEUE_NAME, connection=client)
    [job_id] = registry.get_job_ids()
    job = job_queue(settings, client).fetch_job(job_id)
    assert "ConnectError" in job.latest_result().exc_string
    assert job.retries_left == 0
    failed = REGISTRY.get_sample_value("mdstack_worker_jobs_total", {"outcome": "failed"}) - failed_before
    assert failed == settings.JOB_RETRIES + 1  # first run + every retry
    metrics = http().get(f"{api_url}/metrics").text
    assert f'mdstack_queue_jobs{{queue="{settings.QUEUE_NAME}",state="failed"}} 1.0' in metrics

    # Failed for good, the job dropped its batch (its ticks are in Postgres; the next tick of each symbol
    # brings the view up to date): the job record stays for a look, and a requeue of it finds nothing to do.
    assert client.exists(Keys(settings.KEY_PREFIX).batch(job_id)) == 0
    assert 0 < client.ttl(job.key) <= settings.JOB_FAILURE_TTL_S
    registry.requeue(job_id)
    work(settings)
    assert registry.count == 0
    assert http().get(f"{api_url}/symbols/AAA").status_code == 404


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    """RQ's work() installs SIGTERM/SIGINT handlers in this process: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("own_signal_handlers")
def test_worker_is_ready_only_once_rq_would_stop_it_cleanly(settings: Settings) -> None:
    ctx = context.configure(settings)
    worker = make_worker(ctx)

    before = readiness(worker, ctx)
    worker.work(burst=True)  # an empty queue: installs RQ's handlers, then returns

    assert before.problems == ["worker: RQ loop not running yet"]
    assert signal.getsignal(signal.SIGTERM) == worker.request_stop  # RQ's warm shutdown
    assert readiness(worker, ctx).problems == []


@pytest.mark.usefixtures("own_signal_handlers")
def test_stop_asked_for_before_rq_handlers_ends_the_worker_before_its_first_job(
    api_url: str, settings: Settings
) -> None:
    post(api_url, settings, market(3))
    stop = threading.Event()
    worker = make_worker(context.configure(settings), stop=stop)
    stop.set()  # what the process's own SIGTERM handler does while RQ is starting

    worked = worker.work(burst=True)

    assert worked is False
    assert job_queue(settings, redis.Redis.from_url(settings.redis_url)).count == 1  # still queued
    assert http().get(f"{api_url}/symbols/AAA").status_code == 404


@pytest.mark.e2e
def test_worker_process_stopped_as_soon_as_it_has_started_exits_cleanly(settings: Settings, tmp_path: Path) -> None:
    """SIGTERM right after `worker.started`: RQ is still registering and starting its scheduler."""
    stack = Stack(settings, tmp_path)
    proc = stack.start("worker", health=True)
    log = tmp_path / "worker.log"
    try:
        deadline = time.monotonic() + 30
        while "worker.started" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.005)

        proc.send_signal(signal.SIGTERM)

        assert proc.wait(10) == 0, log.read_text()
        assert "worker.restarted" not in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        stack.stop_all()


# A stop signal lands between two bytecodes of the main thread, here inside logging's own loop over its
# loggers (what RQ's start runs when redis-py sets a level). The handler must not create a logger there.
SIGNAL_DURING_LOGGING = """
import logging, signal, sys, threading
from services.common.logging import configure_logging
from services.consumers.worker import catch_stop
from services.flusher.writer import Flusher
stop = threading.Event()
catch_stop(stop)
configure_logging("worker", "INFO", "json")
handlers = [signal.getsignal(signal.SIGTERM)]
flusher = Flusher.__new__(Flusher)
flusher.stop = threading.Event()
flusher.install_signal_handlers()
handlers.append(signal.getsignal(signal.SIGTERM))
for handler in handlers:
    for i, _ in enumerate(logging.Logger.manager.loggerDict.values()):
        if i == 0:  # once: a second signal makes the flusher leave at once
            handler(signal.SIGTERM, None)
assert stop.is_set() and flusher.stop.is_set()
"""


@pytest.mark.e2e
def test_a_stop_signal_inside_loggings_own_loop_only_sets_the_flag() -> None:
    done = subprocess.run([sys.executable, "-c", SIGNAL_DURING_LOGGING], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def _series(name: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(s.labels.values()): s.value for family in REGISTRY.collect() for s in family.samples if s.name == name
    }


def test_services_clients_name_make_a_bounded_number_of_metric_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new service name was a series in every worker for good: a client sending new ones grew them all."""
    cap = 5  # this test's own cap and label sets, so the series other tests count are theirs
    monkeypatch.setattr(metrics, "RTTM_DLQ_LABELS", metrics.BoundedLabels(cap))
    monkeypatch.setattr(metrics, "RTTM_ERRORS_LABELS", metrics.BoundedLabels(cap))
    names = [f"svc-{uuid.uuid4().hex}" for _ in range(4 * cap)]
    dlq_before, errors_before = _series("mdstack_rttm_dlq_total"), _series("mdstack_rttm_errors_total")

    count_rttm(
        {
            "dlq": [{"service_name": n} for n in names],
            "error": [{"service_name": n, "error_type": "DB_TIMEOUT"} for n in names],
        }
    )

    dlq, errors = _series("mdstack_rttm_dlq_total"), _series("mdstack_rttm_errors_total")
    assert set(dlq) - set(dlq_before) <= {(n,) for n in names[:cap]} | {(metrics.OTHER,)}
    assert set(errors) - set(errors_before) <= {(n, "DB_TIMEOUT") for n in names[:cap]} | {(metrics.OTHER,) * 2}
    assert sum(dlq.values()) - sum(dlq_before.values()) == len(names)
    assert sum(errors.values()) - sum(errors_before.values()) == len(names)
    assert dlq[(metrics.OTHER,)] - dlq_before.get((metrics.OTHER,), 0) == len(names) - cap
