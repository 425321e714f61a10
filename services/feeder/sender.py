"""Posting ticks and trade-pipeline events to the ingest API, with retries that reuse the same event_ids.

One tick goes to `POST /ingest/tick` as an object, several to
`POST /ingest/ticks` as an array; trade-pipeline events go as an array to
their kind's path (`EVENT_PATHS`). A retry re-sends the very same body, so the
API's event_id dedup turns a retried-but-already-stored item into a duplicate
(acknowledged, not processed twice).

    SendError                 a request that did not get a usable answer
     ├── TransientError       retried: connect errors, timeouts, HTTP 429/502/503/504
     └── PermanentError       not retried: 401, 413, 422, other statuses, malformed answers
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)

from services.common.logging import get_logger
from services.feeder.defaults import DETAIL_CHARS
from services.feeder.settings import HTTP_CONCURRENCY
from services.feeder.stats import FeederStats

log = get_logger(__name__)

TICK_PATH = "/ingest/tick"
TICKS_PATH = "/ingest/ticks"
EVENT_PATHS = {  # by ingest kind (pipeline.EVENT_KINDS)
    "trade": "/ingest/trade-events",
    "queue": "/ingest/queue-metrics",
    "dlq": "/ingest/dlq-events",
    "error": "/ingest/error-events",
    "log": "/ingest/log-events",
}
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
# Requests on the wire at once (HTTP_CONCURRENCY, the default of --connections): httpx's pool slows
# down sharply with many concurrent requests, so sends queue on a semaphore in front of it instead.
# Sends sleeping in a retry backoff do not hold a place.


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # first try included
    max_total_s: float = 10.0  # no new attempt starts after this long since the first
    initial_s: float = 0.1  # first backoff; doubles per attempt
    max_backoff_s: float = 2.0
    jitter_s: float = 0.2  # uniform extra wait, so a crowd of retries does not arrive in step
    max_retry_after_s: float = 5.0  # cap on a server's Retry-After


class SendError(Exception):
    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(cause)
        self.cause = cause
        self.detail = detail


class TransientError(SendError):
    def __init__(self, cause: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(cause, detail)
        self.retry_after = retry_after


class PermanentError(SendError):
    pass


@dataclass(frozen=True)
class Outcome:
    """What became of one request's items: an answer, or the error that ended its retries."""

    accepted: int = 0
    duplicates: int = 0
    rejected: tuple[int, ...] = ()  # indexes into the request's items
    error: str | None = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_s(policy: RetryPolicy, attempt_number: int) -> float:
    """Exponential backoff after the given (1-based) failed attempt, plus uniform jitter."""
    exp = policy.initial_s * 2.0 ** min(attempt_number - 1, 32)
    return min(exp, policy.max_backoff_s) + random.uniform(0.0, policy.jitter_s)


def parse_answer(response: httpx.Response) -> Outcome:
    """An ingest answer `{accepted, duplicates, rejected: [{index, errors}]}` as an Outcome."""
    try:
        body = orjson.loads(response.content)
        accepted = int(body["accepted"])
        duplicates = int(body["duplicates"])
        rejected = tuple(int(item["index"]) for item in body.get("rejected") or [])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise PermanentError("bad_answer", response.text[:DETAIL_CHARS]) from exc
    return Outcome(accepted=accepted, duplicates=duplicates, rejected=rejected)


class Sender:
    """Posts batches through one keep-alive client; counts attempts and retries in `stats`.

    Senders of different streams (ticks, each event kind) share the client and
    pass one `gate` (requests on the wire) and one `logged` set (log once per
    cause for the whole process), each keeping its own `stats`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        stats: FeederStats,
        policy: RetryPolicy | None = None,
        *,
        concurrency: int = HTTP_CONCURRENCY,
        gate: asyncio.Semaphore | None = None,
        logged: set[str] | None = None,
    ) -> None:
        self.client = client
        self.stats = stats
        self.policy = policy or RetryPolicy()
        self.gate = gate or asyncio.Semaphore(concurrency)
        self.logged: set[str] = set() if logged is None else logged

    async def deliver(
        self, items: list[dict[str, Any]], scheduled: float, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Post `items` and account for the outcome in `stats`; returns the items the API acknowledged.

        `scheduled` is the monotonic time the items were due: ack latency runs from there.
        """
        try:
            outcome = await self.post(items, path)
        except asyncio.CancelledError:
            self.stats.record_error("cancelled", len(items))
            raise
        except Exception as exc:  # a bug here must still show up in the counts
            log.exception("feeder.send_crashed")
            self.stats.record_error(type(exc).__name__, len(items))
            return []
        if outcome.error is not None:
            self.stats.record_error(outcome.error, len(items))
            return []
        self.stats.record_ack(
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            rejected=len(outcome.rejected),
            latency_s=time.monotonic() - scheduled,
        )
        answered = outcome.accepted + outcome.duplicates + len(outcome.rejected)
        if answered != len(items) and "answer_mismatch" not in self.logged:
            self.logged.add("answer_mismatch")
            log.warning("feeder.answer_mismatch", path=path, items=len(items), answered=answered, note="logged once")
        rejected = set(outcome.rejected)
        return [item for n, item in enumerate(items) if n not in rejected]

    async def post(self, items: list[dict[str, Any]], path: str | None = None) -> Outcome:
        """Ticks without a `path` (one as an object, several as an array); else an array to `path`."""
        if path is not None:
            body = orjson.dumps(items)
        elif len(items) == 1:
            path, body = TICK_PATH, orjson.dumps(items[0])
        else:
            path, body = TICKS_PATH, orjson.dumps(items)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.policy.max_attempts) | stop_before_delay(self.policy.max_total_s),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(path, body)
        except SendError as exc:
            self._log_once(exc, path=path, items=len(items))
            return Outcome(error=exc.cause)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    async def _attempt(self, path: str, body: bytes) -> Outcome:
        self.stats.attempts += 1
        try:
            async with self.gate:
                response = await self.client.post(path, content=body, headers={"content-type": "application/json"})
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            raise TransientError(type(exc).__name__, str(exc)) from exc
        if response.is_success:
            return parse_answer(response)
        cause = f"http_{response.status_code}"
        detail = response.text[:DETAIL_CHARS]
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientError(cause, detail, parse_retry_after(response.headers.get("retry-after")))
        raise PermanentError(cause, detail)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after_s)
        return backoff_s(self.policy, state.attempt_number)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and f"retry:{exc.cause}" not in self.logged:
            self.logged.add(f"retry:{exc.cause}")
            log.warning("feeder.retrying", cause=exc.cause, detail=exc.detail, note="logged once per cause")

    def _log_once(self, exc: SendError, *, path: str, items: int) -> None:
        """One log line per distinct failure cause, not one per request."""
        if exc.cause in self.logged:
            return
        self.logged.add(exc.cause)
        kind = "gave_up" if isinstance(exc, TransientError) else "request_failed"
        log.error(
            f"feeder.{kind}", cause=exc.cause, detail=exc.detail, path=path, items=items, note="logged once per cause"
        )
