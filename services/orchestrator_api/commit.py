"""Group commit: concurrent ingest requests share one Redis transaction and one RQ job.

A request hands its validated items (ticks or RTTM events, see `kinds`) to
`GroupCommitter.submit` and waits. The
committer lingers `INGEST_LINGER_MS` for other requests to join, then writes
the whole group in one MULTI: the `ingest` script (dedup marks, the batch the
job will read, the flush stream entry, `tick.received` envelopes) and the RQ
job `process_batch(batch_id)`. Only after EXEC returns does any request get
its answer, so a 200 always means "in Redis"; an error fails every request of
the group and none of its items is half-written.

Back-pressure: `admit` refuses a request up front (429/503 with Retry-After)
when this process already holds INGEST_MAX_PENDING items waiting for a commit,
or when Redis holds more than INGEST_MAX_BACKLOG items not yet in Postgres or
INGEST_MAX_QUEUED_JOBS jobs not yet started. Both figures come back with every
commit, at no extra round trip; while refusing, they are re-read at most
every BACKLOG_REFRESH_S.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import orjson
import redis
from redis.exceptions import NoScriptError
from rq import Queue, Retry
from starlette.exceptions import HTTPException

from services.common.keys import Keys
from services.common.kinds import Kind
from services.common.logging import get_logger
from services.common.scripts import register
from services.common.settings import Settings
from services.orchestrator_api import metrics

log = get_logger(__name__)
PROCESS_BATCH = "services.consumers.tasks.process_batch"
RESULT_TTL_S = 60  # finished jobs are only kept for a glance in rq-dashboard
FAILURE_TTL_S = 7 * 24 * 3600  # failed jobs wait a week for someone to look
BATCH_TTL_S = FAILURE_TTL_S + 24 * 3600  # a batch outlives its job (queued, retried or failed), never forever
BACKLOG_REFRESH_S = 0.5


Item = tuple[Kind, str, dict[str, Any]]  # kind, idempotency key, record


@dataclass
class _Pending:
    items: list[Item]
    future: asyncio.Future[list[bool]] = field(repr=False)


class GroupCommitter:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.queue = Queue(settings.QUEUE_NAME, connection=client)
        self.script = register(client, "ingest")
        self.retry = Retry(max=settings.JOB_RETRIES, interval=settings.retry_intervals or 0)
        self._pending: deque[_Pending] = deque()
        self._pending_items = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.backlog = 0  # items in Redis not yet in Postgres, as of the last commit or refresh
        self.queued_jobs = 0
        self._refreshed_at = 0.0
        self._refresh: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    def admit(self, count: int) -> None:
        """Raise 429/503 (with Retry-After) when `count` more items should not be taken now."""
        settings = self.settings
        if self._pending_items and self._pending_items + count > settings.INGEST_MAX_PENDING:
            metrics.REFUSED.labels("pending").inc(count)
            raise HTTPException(
                429,
                f"ingest is saturated: {self._pending_items} items wait for a commit in this process "
                f"(INGEST_MAX_PENDING={settings.INGEST_MAX_PENDING}); retry later",
                headers={"Retry-After": str(settings.INGEST_RETRY_AFTER_S)},
            )
        if self.backlog > settings.INGEST_MAX_BACKLOG or self.queued_jobs > settings.INGEST_MAX_QUEUED_JOBS:
            self._refresh_figures()
            if self.backlog > settings.INGEST_MAX_BACKLOG or self.queued_jobs > settings.INGEST_MAX_QUEUED_JOBS:
                metrics.REFUSED.labels("backlog").inc(count)
                raise HTTPException(
                    503,
                    f"the stack is behind: {self.backlog} items not yet in Postgres "
                    f"(INGEST_MAX_BACKLOG={settings.INGEST_MAX_BACKLOG}), {self.queued_jobs} jobs queued "
                    f"(INGEST_MAX_QUEUED_JOBS={settings.INGEST_MAX_QUEUED_JOBS}); nothing was stored, retry later",
                    headers={"Retry-After": str(settings.INGEST_RETRY_AFTER_S)},
                )

    def _refresh_figures(self) -> None:
        """Re-read the backlog in the background (no commits run while every request is refused)."""
        if time.monotonic() - self._refreshed_at < BACKLOG_REFRESH_S or self._refresh is not None:
            return
        self._refreshed_at = time.monotonic()

        async def read() -> None:
            try:
                backlog, queued = await anyio.to_thread.run_sync(self._read_figures)
                self._set_figures(backlog, queued)
            except redis.RedisError as exc:
                log.warning("ingest.backlog_unreadable", error=str(exc))
            finally:
                self._refresh = None

        self._refresh = asyncio.ensure_future(read())

    def _read_figures(self) -> tuple[object, object]:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.backlog)
            pipe.llen(self.queue.key)
            backlog, queued = pipe.execute()
        return backlog, queued

    def _set_figures(self, backlog: object, queued: object) -> None:
        self.backlog = int(backlog or 0)  # type: ignore[call-overload]
        self.queued_jobs = int(queued or 0)  # type: ignore[call-overload]
        self._refreshed_at = time.monotonic()
        metrics.BACKLOG.set(self.backlog)

    async def submit(self, items: list[Item]) -> list[bool]:
        """Store items; returns per item True if accepted, False if a duplicate."""
        if self._closing:
            raise RuntimeError("ingest is shutting down")
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(items, future))
        self._pending_items += len(items)
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        linger = self.settings.INGEST_LINGER_MS / 1000.0
        while True:
            await self._wakeup.wait()
            if not self._pending:
                self._wakeup.clear()
                if self._closing:
                    return
                continue
            if linger > 0 and self._pending_items < self.settings.INGEST_MAX_GROUP and not self._closing:
                await asyncio.sleep(linger)
            group = self._take_group()
            items = [item for p in group for item in p.items]
            started = time.perf_counter()
            try:
                flags = await anyio.to_thread.run_sync(self._commit, items)
            except Exception as exc:
                metrics.COMMIT_ERRORS.inc()
                log.error("ingest.commit_failed", error=f"{type(exc).__name__}: {exc}", requests=len(group))
                for p in group:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.COMMIT_TICKS.observe(len(items))
            offset = 0
            for p in group:
                if not p.future.done():
                    p.future.set_result(flags[offset : offset + len(p.items)])
                offset += len(p.items)

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

    def _commit(self, items: list[Item]) -> list[bool]:
        batch_id = uuid.uuid4().hex
        args: list[object] = [
            self.keys.dedup_prefix,
            self.settings.DEDUP_TTL_S,
            self.keys.batch(batch_id),
            self.keys.flush_stream,
            batch_id,
            self.keys.history,
            self.settings.SSE_HISTORY,
            self.settings.PUBSUB_CHANNEL,
            self.keys.accepted,
            self.keys.backlog,
        ]
        for kind, key, record in items:
            body = orjson.dumps(record)
            env = b""
            if kind.envelope:
                symbol = b',"symbol":"' + record["symbol"].encode() + b'"' if "symbol" in record else b""
                env = b'{"type":"' + kind.envelope.encode() + b'"' + symbol + b',"data":' + body + b"}"
            args += (kind.name, key, body, env)
        results = self._transaction(batch_id, args)
        if isinstance(results[0], NoScriptError):  # Redis lost its script cache (a restart): load, redo once
            self.client.script_load(self.script.script)
            batch_id = uuid.uuid4().hex
            args[2], args[4] = self.keys.batch(batch_id), batch_id
            results = self._transaction(batch_id, args)
        if isinstance(results[0], Exception):
            raise results[0]
        self._set_figures(results[-2], results[-1])
        flags = [bool(flag) for flag in results[0]]
        log.debug("ingest.committed", trace_id=batch_id, items=len(items), accepted=sum(flags))
        return flags

    def _transaction(self, batch_id: str, args: list[object]) -> list[object]:
        """The script and the RQ job in one MULTI. EVALSHA is sent as is: a Script object would cost
        a SCRIPT EXISTS round trip per commit."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.multi()
            pipe.evalsha(self.script.sha, 0, *args)
            self.queue.enqueue_call(
                PROCESS_BATCH,
                kwargs={"batch_id": batch_id},
                job_id=batch_id,
                retry=self.retry,
                timeout=self.settings.JOB_TIMEOUT_S,
                result_ttl=RESULT_TTL_S,
                failure_ttl=FAILURE_TTL_S,
                pipeline=pipe,
            )
            pipe.expire(self.keys.batch(batch_id), BATCH_TTL_S)  # no batch (all duplicates): a no-op
            pipe.get(self.keys.backlog)
            pipe.llen(self.queue.key)
            return pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]
