"""Group commit: concurrent ingest requests share one Redis transaction; jobs follow a cadence.

A request hands its validated items (ticks or RTTM events, see `kinds`) to
`GroupCommitter.submit` and waits. The committer takes every request waiting
as one group: those that arrived while the commit before was in Redis. With
INGEST_LINGER_MS [0] set it first waits that long for more to join (unless the
request came alone, INGEST_LINGER_GAP_MS or more after the one before: nothing
would join it); by default it does not, since a wait made the API
latency-bound under load. It writes the whole group with one EVALSHA of
the `ingest` script (dedup marks, the batch and its entry among the pending
batches, the flush stream entry, `tick.received` envelopes, the figures
below), sent from the event loop: a thread hop and a MULTI around it cost
more CPU than the commit itself at one request per commit. When the last job
is JOB_CADENCE_MS old, the RQ job `process_batch(batch_id)`, which takes every
pending batch (consumers/tasks.py), is enqueued right after the script and
before any answer; a commit within the cadence leaves a job owed, which the
job clock enqueues once the cadence allows. No job at all while one drains
(the script says so; consumers/drain.py): it takes the batch. Either way the job is enqueued
after its batch is in, so every batch is claimed by a job that starts after
it. Only after the script returns does any request get its answer, so a 200
always means "in Redis"; an error fails every request of the group and, the
script being atomic, none of its items is half-written.

Back-pressure: `admit` refuses a request up front (429/503 with Retry-After)
when this process already holds INGEST_MAX_PENDING items waiting for a commit,
or when Redis holds more than INGEST_MAX_BACKLOG items not yet in Postgres,
INGEST_MAX_QUEUED_ITEMS items whose job has not ended, or INGEST_MAX_QUEUED_JOBS
jobs not yet started. The queued items bound the batches' memory whatever the
size of a job; the jobs bound RQ's. The figures come back with every commit,
at no extra round trip; while refusing, they are re-read at most every
BACKLOG_REFRESH_S.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import anyio.to_thread
import orjson
import redis
import redis.asyncio as aioredis

from services.common import realtime
from services.common.jobs import enqueue_batch_job, job_queue
from services.common.keys import BATCH_TTL_S, Keys
from services.common.kinds import TICK, Kind
from services.common.logging import get_logger
from services.common.redis import SOCKET_TIMEOUT_S, async_redis
from services.common.scripts import register
from services.common.settings import Settings
from services.orchestrator_api import errors, metrics
from services.orchestrator_api.defaults import BACKLOG_REFRESH_S
from services.orchestrator_api.ingest import dedup
from services.orchestrator_api.ingest.merged import TickMerger

log = get_logger(__name__)
# A batch normally dies with its job. One whose job has not run within the hour only carries views the
# dashboards have long moved past (its items are in Postgres by then), so it goes anyway.


Item = tuple[Kind, str, dict[str, Any]]  # kind, idempotency key, record


@dataclass
class _Pending:
    items: list[Item]
    future: asyncio.Future[list[int]] = field(repr=False)
    after_gap: bool = False  # arrived INGEST_LINGER_GAP_MS or more after the request before it


@dataclass
class _Script:
    """One commit's EVALSHA: its batch id, keys and arguments (`ingest.lua`)."""

    batch_id: str
    keys: list[str]
    args: list[object]


class GroupCommitter:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.queue = job_queue(settings, client)  # JSON jobs (services/common/jobs.py)
        self.script = register(client, "ingest", __package__)
        self.aclient: aioredis.Redis | None = None  # the commits' own, on the event loop (`start`)
        self.ascript: Any = None
        self._pending: deque[_Pending] = deque()
        self._pending_items = 0
        self._last_arrival = -float("inf")
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.backlog = 0  # items in Redis not yet in Postgres, as of the last commit or refresh
        self.queued_jobs = 0
        self.queued_items = 0  # items whose batch waits for (or is in) its job
        # Jobs on a cadence: a commit carries a job when the last one is JOB_CADENCE_MS old; one that does not
        # leaves a job owed, which `_job_clock` enqueues when the cadence allows (after that commit's EXEC).
        self._cadence_s = settings.JOB_CADENCE_MS / 1000.0
        self._last_job = -float("inf")
        self._owed = asyncio.Event()
        self._clock: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        self._refresh: asyncio.Future[None] | None = None
        self.merger = TickMerger(settings, client)  # `ticks.merged`, and whether `tick.received` is wanted

    async def start(self) -> None:
        self.aclient = async_redis(self.settings, socket_timeout=SOCKET_TIMEOUT_S)  # a hung Redis fails a commit
        self.ascript = register(self.aclient, "ingest", __package__)
        await self.merger.start()
        self._task = asyncio.create_task(self._run(), name="group-commit")
        self._clock = asyncio.create_task(self._job_clock(), name="job-clock")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._clock is not None:
            self._clock.cancel()
        if self._owed.is_set():  # the last commits' job, before this process goes
            await anyio.to_thread.run_sync(self._enqueue_drain)
        await self.merger.stop()
        if self.aclient is not None:
            await self.aclient.aclose()

    def admit(self, count: int) -> None:
        """Raise Saturated (429) or Behind (503), with Retry-After, when `count` more items should not be taken now."""
        settings = self.settings
        if self._pending_items and self._pending_items + count > settings.INGEST_MAX_PENDING:
            metrics.REFUSED.labels("pending").inc(count)
            raise errors.Saturated(
                f"ingest is saturated: {self._pending_items} items wait for a commit in this process "
                f"(INGEST_MAX_PENDING={settings.INGEST_MAX_PENDING}); retry later",
                settings.INGEST_RETRY_AFTER_S,
            )
        if self._behind() is not None:
            self._refresh_figures()
            if (why := self._behind()) is not None:
                metrics.REFUSED.labels("backlog").inc(count)
                raise errors.Behind(
                    f"the stack is behind: {why}; nothing was stored, retry later", settings.INGEST_RETRY_AFTER_S
                )

    def _behind(self) -> str | None:
        """Which bound on work already in Redis is passed, or None."""
        settings = self.settings
        if self.backlog > settings.INGEST_MAX_BACKLOG:
            return f"{self.backlog} items not yet in Postgres (INGEST_MAX_BACKLOG={settings.INGEST_MAX_BACKLOG})"
        if self.queued_items > settings.INGEST_MAX_QUEUED_ITEMS:
            return (
                f"{self.queued_items} items wait for the workers "
                f"(INGEST_MAX_QUEUED_ITEMS={settings.INGEST_MAX_QUEUED_ITEMS})"
            )
        if self.queued_jobs > settings.INGEST_MAX_QUEUED_JOBS:
            return f"{self.queued_jobs} jobs queued (INGEST_MAX_QUEUED_JOBS={settings.INGEST_MAX_QUEUED_JOBS})"
        return None

    def _refresh_figures(self) -> None:
        """Re-read the backlog in the background (no commits run while every request is refused)."""
        if time.monotonic() - self._refreshed_at < BACKLOG_REFRESH_S or self._refresh is not None:
            return
        self._refreshed_at = time.monotonic()

        async def read() -> None:
            try:
                self._set_figures(*await anyio.to_thread.run_sync(self._read_figures))
            except redis.RedisError as exc:
                log.warning("ingest.backlog_unreadable", error=str(exc))
            finally:
                self._refresh = None

        self._refresh = asyncio.ensure_future(read())

    def _read_figures(self) -> list[object]:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.backlog)
            pipe.get(self.keys.queued)
            pipe.llen(self.queue.key)
            return pipe.execute()  # type: ignore[no-any-return]

    def _set_figures(self, backlog: object, queued_items: object, queued_jobs: object) -> None:
        self.backlog = int(backlog or 0)  # type: ignore[call-overload]
        self.queued_items = int(queued_items or 0)  # type: ignore[call-overload]
        self.queued_jobs = int(queued_jobs or 0)  # type: ignore[call-overload]
        self._refreshed_at = time.monotonic()
        metrics.BACKLOG.set(self.backlog)

    async def submit(self, items: list[Item]) -> list[int]:
        """Store items; returns per item 1 if accepted, 0 if a duplicate, -1 if refused: the request
        would bring the number of known symbols over MAX_SYMBOLS (refused whole, nothing stored)."""
        if self._closing:
            raise errors.ShuttingDown("this API process is shutting down; nothing was stored, retry")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        gap_s = self.settings.INGEST_LINGER_GAP_MS / 1000.0
        after_gap = gap_s > 0 and now - self._last_arrival >= gap_s
        self._last_arrival = now
        self._pending.append(_Pending(items, future, after_gap))
        self._pending_items += len(items)
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            if not self._pending:
                self._wakeup.clear()
                if self._closing:
                    return
                continue
            if self._should_linger():
                await asyncio.sleep(self.settings.INGEST_LINGER_MS / 1000.0)
            group = self._take_group()
            requests = [p.items for p in group]
            started = time.perf_counter()
            try:
                flags = await self._commit_async(requests)
            except Exception as exc:
                metrics.COMMIT_ERRORS.inc()
                log.error("ingest.commit_failed", error=f"{type(exc).__name__}: {exc}", requests=len(group))
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.COMMIT_TICKS.observe(len(flags))
            offset = 0
            for p in group:
                if not p.future.done():
                    p.future.set_result(flags[offset : offset + len(p.items)])
                offset += len(p.items)

    def _should_linger(self) -> bool:
        """Wait for more requests only when some could come: not for a lone request after a quiet gap."""
        full = self._pending_items >= self.settings.INGEST_MAX_GROUP
        if self.settings.INGEST_LINGER_MS <= 0 or self._closing or full:
            return False
        return len(self._pending) > 1 or not self._pending[0].after_gap

    async def _job_clock(self) -> None:
        """Enqueue the job owed by commits that carried none, once the cadence allows."""
        while True:
            await self._owed.wait()
            await asyncio.sleep(max(0.0, self._last_job + self._cadence_s - time.monotonic()))
            if self._owed.is_set() and time.monotonic() - self._last_job >= self._cadence_s:
                self._owed.clear()
                self._last_job = time.monotonic()
                try:
                    await anyio.to_thread.run_sync(self._enqueue_drain)
                except redis.RedisError as exc:  # the reaper enqueues for batches left pending (reaper.py)
                    log.warning("ingest.job_enqueue_failed", error=str(exc))

    def _enqueue_drain(self) -> None:
        """A job of its own id and no batch: it drains what is pending."""
        enqueue_batch_job(self.queue, self.settings, uuid.uuid4().hex)

    def _take_group(self) -> list[_Pending]:
        """Whole requests, up to INGEST_MAX_GROUP items (at least one request)."""
        group: list[_Pending] = []
        count = 0
        while self._pending and (not group or count + len(self._pending[0].items) <= self.settings.INGEST_MAX_GROUP):
            pending = self._pending.popleft()
            group.append(pending)
            count += len(pending.items)
        self._pending_items -= count
        return group

    async def _commit_async(self, requests: list[list[Item]]) -> list[int]:
        """The group's script, then its job if the cadence allows (else one is owed); returns the flags."""
        assert self.ascript is not None, "start() first"
        script = self._script(requests)
        # EVALSHA; on NOSCRIPT (Redis lost its script cache: a restart) the script is loaded and run once more.
        # Nothing was written by the refused call, so nothing is written twice.
        results = await self.ascript(keys=script.keys, args=script.args)
        flags, draining = self._committed(requests, script, results)
        if draining:  # a job drains (consumers/drain.py): it takes this batch and any an owed job would have taken
            self._owed.clear()
        elif 1 in flags:  # a batch was written (all duplicates: none, and no job needed)
            if time.monotonic() - self._last_job >= self._cadence_s:
                self._last_job = time.monotonic()
                try:  # before the answers: a batch acknowledged after a quiet spell has its job queued
                    await anyio.to_thread.run_sync(enqueue_batch_job, self.queue, self.settings, script.batch_id)
                except redis.RedisError as exc:  # the items are in: the clock tries again, the reaper after it
                    log.warning("ingest.job_enqueue_failed", error=str(exc))
                    self._owed.set()
            else:
                self._owed.set()
        return flags

    def _commit(self, requests: list[list[Item]], with_job: bool = True) -> list[int]:
        """The same commit from a thread (tools, tests): the script, then, with `with_job`, its job."""
        script = self._script(requests)
        results = self.script(keys=script.keys, args=script.args)  # NOSCRIPT: loaded and run again, as above
        flags, _ = self._committed(requests, script, results)
        if with_job:
            enqueue_batch_job(self.queue, self.settings, script.batch_id)
        return flags

    def _script(self, requests: list[list[Item]]) -> _Script:
        """The `ingest` script's keys and arguments for one group."""
        settings, keys = self.settings, self.keys
        now = time.time()
        batch_id = uuid.uuid4().hex
        kinds: dict[str, int] = {}
        script_keys: list[str] = [
            keys.batch(batch_id),
            keys.flush_stream,
            keys.history,
            keys.accepted,
            keys.backlog,
            keys.symbols,
            keys.queued,
            keys.pending,
            self.queue.key,
            keys.drainer,
        ]
        expire_at = 0
        item_args: list[object] = []
        envelopes = 0
        envelope_bytes = 0
        per_tick = self.merger.per_tick  # `tick.received` only while a client asks (merged.py)
        for items in requests:
            for kind, key, record in items:
                if kind.name not in kinds:
                    kinds[kind.name] = len(kinds) + 1
                    current, previous, expire_at = dedup.window_keys(keys, kind.name, now, settings.DEDUP_WINDOW_S)
                    script_keys += (current, previous)
                body = orjson.dumps(record)
                env = b""
                symbol = record["symbol"] if kind is TICK else ""
                if kind.envelope and per_tick:
                    tag = b',"symbol":"' + symbol.encode() + b'"' if symbol else b""
                    env = b'{"type":"' + kind.envelope.encode() + b'"' + tag + b',"data":' + body + b"}"
                    envelopes += 1
                    envelope_bytes += len(env)
                item_args += (kinds[kind.name], dedup.digest(key), body, env, symbol)
        args: list[object] = [
            batch_id,
            realtime.history_maxlen(settings, envelope_bytes / envelopes if envelopes else 0),
            settings.PUBSUB_CHANNEL,
            expire_at,
            int(now * 1000),
            int((now - settings.SYMBOL_IDLE_S) * 1000),
            settings.MAX_SYMBOLS,
            BATCH_TTL_S,
            len(kinds),
            *kinds,
            len(requests),
            *(len(items) for items in requests),
            *item_args,
        ]
        return _Script(batch_id, script_keys, args)

    def _committed(self, requests: list[list[Item]], script: _Script, results: Any) -> tuple[list[int], bool]:
        """Flags of a script's reply and whether a job drains; the figures it carries noted, its accepted ticks
        handed to the merger."""
        raw_flags, backlog, queued_items, queued_jobs, draining = results
        self._set_figures(backlog, queued_items, queued_jobs)
        flags = [int(flag) for flag in raw_flags]
        items = chain.from_iterable(requests)
        self.merger.add([r for (kind, _, r), flag in zip(items, flags, strict=True) if flag == 1 and kind is TICK])
        log.debug("ingest.committed", trace_id=script.batch_id, items=len(flags), accepted=flags.count(1))
        return flags, bool(draining)
