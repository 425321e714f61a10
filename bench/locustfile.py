"""Locust load test of the running stack: ingest users, dashboard readers and SSE listeners, with a quality gate.

Against a stack started with `mdstack up --no-feeder` (API on 8000, gateway on 8001):

    locust -f bench/locustfile.py --headless -u 50 -r 25 -t 30s --host http://127.0.0.1:8000

Users, weighted by their `weight` attribute; name classes after the options to
run only those, e.g. `... --host http://127.0.0.1:8000 IngestBatch SSEListener`
(`--class-picker` chooses them in the web UI):

- IngestSingle (3): `POST /ingest/tick`, one tick per request, as fast as acknowledgements come back.
- IngestBatch (1): `POST /ingest/ticks`, `LOCUST_BATCH` ticks per request.
- DashboardReader (2): the dashboard's reads: symbols, a view, 1m candles, history, RTTM metrics, `/system`.
- SSEListener (1): `GET /stream?types=symbol.updated` on the gateway for `LOCUST_SSE_LISTEN_S`, then reconnects;
  every event is a request of type SSE named `symbol.updated` whose response time is the delivery
  latency, now - the view's `computed_at` (same clock: run locust on the stack's machine).

Ticks come from the feeder's random walk (`services.feeder.walk`) over `SYMBOLS`, stamped now, each with
a unique `event_id` (`locust-<uuid4 hex>`), so every acknowledged tick is new and ends up in Postgres.

Environment (credentials, `API_KEY` and `SYMBOLS` are read like the services read them, with the same defaults):

| variable | meaning |
|---|---|
| `INGEST_USERNAME`, `INGEST_PASSWORD` | Basic Auth for `/ingest/*` |
| `API_KEY` | sent as `x-api-key` by the dashboard readers when set |
| `SYMBOLS` | symbols of the ticks and of the reads |
| `GATEWAY_URL` [http://127.0.0.1:8001] | where the SSE listeners connect (`--host` is the API) |
| `LOCUST_BATCH` [50] | ticks per `POST /ingest/ticks` |
| `LOCUST_SSE_LISTEN_S` [10] | how long an SSE listener stays connected before reconnecting |
| `LOCUST_MAX_FAIL_RATIO` [0.01] | quality gate: highest failure ratio over all requests |
| `LOCUST_MAX_P95_MS` [500] | quality gate: highest aggregated p95 response time, SSE deliveries included |

The gate runs when locust quits: the exit code is 1 (and the reason is logged) when the failure ratio or
the aggregated p95 is over its limit, or when no request was made at all; 0 otherwise, even when a few
requests failed within the allowed ratio.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from typing import Any

import gevent
import orjson
import requests
from locust import FastHttpUser, User, constant, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from harness.sse import fields, is_comment, iter_frames
from services.common.settings import Settings
from services.feeder.settings import FeederSettings
from services.feeder.walk import TickGenerator

log = logging.getLogger("mdstack.locust")

SETTINGS = Settings()  # INGEST_USERNAME, INGEST_PASSWORD, API_KEY as the services read them
AUTH = (SETTINGS.INGEST_USERNAME, SETTINGS.INGEST_PASSWORD)
SYMBOLS = FeederSettings().symbol_list  # SYMBOLS as the feeder reads it
GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8001").rstrip("/")
BATCH = int(os.environ.get("LOCUST_BATCH", "50"))
SSE_LISTEN_S = float(os.environ.get("LOCUST_SSE_LISTEN_S", "10"))
SSE_READ_TIMEOUT_S = 30.0  # longer than the gateway's heartbeat (SSE_PING_S, 15 s): silence this long is a stall
MAX_FAIL_RATIO = float(os.environ.get("LOCUST_MAX_FAIL_RATIO", "0.01"))
MAX_P95_MS = float(os.environ.get("LOCUST_MAX_P95_MS", "500"))
SOURCE = "locust"  # the ticks' `source`, to tell load-test rows apart in md_ticks


def new_event_id() -> str:
    return f"locust-{uuid.uuid4().hex}"


def now_ms() -> int:
    return int(time.time() * 1000)


def json_body(response: Any) -> dict[str, Any]:
    """The response's JSON object, or {} when its body is not one."""
    try:
        body = orjson.loads(response.content or b"")
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def check_ingest(response: Any, sent: int) -> None:
    """Success when the API stored every tick: 200 with accepted + duplicates == sent and nothing rejected."""
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
        return
    body = json_body(response)
    if not body or body.get("rejected") or body.get("accepted", 0) + body.get("duplicates", 0) != sent:
        response.failure(f"not every tick was stored: {body}")


class ApiUser(FastHttpUser):
    """A user of the API, closing its connections when it stops (locust leaves them to the garbage collector)."""

    abstract = True

    def on_stop(self) -> None:
        self.client.client.close()


class IngestSingle(ApiUser):
    """A feeder posting one tick per request, closed loop: the next tick goes out when the last is acknowledged."""

    weight = 3
    wait_time = constant(0)

    def on_start(self) -> None:
        self.ticks = TickGenerator(SYMBOLS, seed=random.randrange(2**32), source=SOURCE, event_id=new_event_id)

    @task
    def post_tick(self) -> None:
        with self.client.post(
            "/ingest/tick", json=self.ticks.next_tick(now_ms()), auth=AUTH, catch_response=True
        ) as response:
            check_ingest(response, 1)


class IngestBatch(ApiUser):
    """A feeder posting `LOCUST_BATCH` ticks per request, closed loop."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.ticks = TickGenerator(SYMBOLS, seed=random.randrange(2**32), source=SOURCE, event_id=new_event_id)

    @task
    def post_ticks(self) -> None:
        ts = now_ms()
        batch = [self.ticks.next_tick(ts) for _ in range(BATCH)]
        with self.client.post("/ingest/ticks", json=batch, auth=AUTH, catch_response=True) as response:
            check_ingest(response, BATCH)


class DashboardReader(ApiUser):
    """A dashboard polling the read API. 404 for a symbol without a view yet and 503 from /rttm/metrics
    before the first RTTM snapshot are what a fresh stack answers, so they count as successes."""

    weight = 2
    wait_time = constant(0.1)
    default_headers = {"x-api-key": SETTINGS.API_KEY} if SETTINGS.API_KEY else None

    def _get(self, path: str, name: str, *, ok: tuple[int, str] | None = None) -> None:
        """GET `path`, reported under `name`; `ok` = (status, start of `detail`) also counted a success."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code == 200:
                return
            if ok and response.status_code == ok[0]:
                detail = str(json_body(response).get("detail", ""))
                if detail.startswith(ok[1]):
                    response.success()
                    return
            response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")

    def _symbol(self, path: str, name: str) -> None:
        self._get(path.format(random.choice(SYMBOLS)), name, ok=(404, "unknown symbol"))

    @task(3)
    def symbols(self) -> None:
        self._get("/symbols", "/symbols")

    @task(5)
    def view(self) -> None:
        self._symbol("/symbols/{}", "/symbols/[id]")

    @task(3)
    def candles(self) -> None:
        self._symbol("/symbols/{}/candles?interval=1m", "/symbols/[id]/candles?interval=1m")

    @task(2)
    def history(self) -> None:
        self._symbol("/symbols/{}/history?limit=100", "/symbols/[id]/history?limit=100")

    @task(1)
    def rttm_metrics(self) -> None:
        self._get("/rttm/metrics", "/rttm/metrics", ok=(503, "no RTTM snapshot yet"))

    @task(1)
    def system(self) -> None:
        self._get("/system", "/system")


class SSEListener(User):
    """A browser on the gateway's stream of view updates. Each `symbol.updated` event is reported as a
    request of type SSE with the delivery latency; a failed connect, a dropped or stalled stream, and an
    `overflow` (the gateway dropped us for reading too slowly) are failures. Reconnects without
    Last-Event-ID, so replayed events never inflate the latency."""

    weight = 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.session = requests.Session()
        if SETTINGS.API_KEY:
            self.session.headers["x-api-key"] = SETTINGS.API_KEY

    def on_stop(self) -> None:
        self.session.close()

    def _report(self, name: str, response_time: float, length: int = 0, exception: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="SSE",
            name=name,
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={},
        )

    @task
    def listen(self) -> None:
        started = time.perf_counter()
        try:
            response = self.session.get(
                f"{GATEWAY_URL}/stream",
                params={"types": "symbol.updated"},
                stream=True,
                timeout=(5.0, SSE_READ_TIMEOUT_S),
            )
        except requests.RequestException as exc:
            self._report("connect", (time.perf_counter() - started) * 1000, exception=exc)
            gevent.sleep(1)
            return
        with response:
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                self._report("connect", elapsed, exception=RuntimeError(f"HTTP {response.status_code}"))
                gevent.sleep(1)
                return
            self._report("connect", elapsed)
            # Leave after SSE_LISTEN_S even when no event comes; gevent.Timeout is a BaseException,
            # so it passes through requests/urllib3 and `with response` closes the connection.
            with gevent.Timeout(SSE_LISTEN_S, False):
                try:
                    self._read(response)
                except requests.RequestException as exc:
                    self._report("stream", 0, exception=exc)

    def _read(self, response: requests.Response) -> None:
        for frame in iter_frames(response.iter_content(chunk_size=None)):  # each read as it arrives
            if not is_comment(frame):  # heartbeats
                event = fields(frame)
                self._dispatch(event.get("event", "message"), event.get("data", "").encode())
        self._report("stream", 0, exception=ConnectionError("the gateway closed the stream"))

    def _dispatch(self, event: str, data: bytes) -> None:
        if event == "symbol.updated":
            try:
                computed_at = float(orjson.loads(data)["data"]["view"]["computed_at"])
            except (KeyError, TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
                self._report(event, 0, len(data), exception=ValueError(f"not a view envelope: {exc!r}"))
                return
            self._report(event, max(0.0, time.time() * 1000 - computed_at), len(data))
        elif event == "overflow":
            self._report("overflow", 0, len(data), exception=RuntimeError(f"gateway dropped the client: {data!r}"))


@events.quitting.add_listener
def quality_gate(environment: Environment, **_kwargs: Any) -> None:
    """Exit code 1 when the failure ratio or the aggregated p95 is over its limit, or nothing was requested."""
    if isinstance(environment.runner, WorkerRunner):
        return  # distributed runs: the master holds the aggregated stats and decides
    total = environment.stats.total
    fail_ratio = total.fail_ratio
    p95 = total.get_response_time_percentile(0.95) or 0.0
    problems = []
    if total.num_requests == 0:
        problems.append("no request was made")
    if fail_ratio > MAX_FAIL_RATIO:
        problems.append(f"failure ratio {fail_ratio:.4f} > LOCUST_MAX_FAIL_RATIO {MAX_FAIL_RATIO:.4f}")
    if p95 > MAX_P95_MS:
        problems.append(f"p95 {p95:.1f} ms > LOCUST_MAX_P95_MS {MAX_P95_MS:g} ms")
    figures = f"{total.num_requests} requests, {total.num_failures} failures, p95 {p95:.1f} ms"
    if problems:
        log.error("quality gate FAILED (%s): %s", figures, "; ".join(problems))
        environment.process_exit_code = 1
    else:
        log.info("quality gate passed (%s; limits: failure ratio %g, p95 %g ms)", figures, MAX_FAIL_RATIO, MAX_P95_MS)
        environment.process_exit_code = 0
