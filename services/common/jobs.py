"""The RQ jobs of mdstack: JSON only, one function, a batch id its only argument.

RQ pickles job data by default, and a worker unpickles whatever a job hash in
Redis holds: anyone able to write to Redis could run code on every worker.
So every Queue and Worker here uses RQ's JSONSerializer (`job_queue`,
`BatchJob`), and a worker runs nothing but `process_batch(batch_id)`: a job
naming another function, an instance, callbacks or other arguments, or whose
data is not JSON (a pickle), fails for good without calling anything.

Jobs an older mdstack left pickled in Redis are converted (or dropped) when
the API starts (`orchestrator_api/upgrade.py`): `legacy_batch_id` reads such a
pickle with an unpickler that imports nothing, so no code can run while
reading it; only the exact shape mdstack wrote is accepted.
"""

from __future__ import annotations

import io
import json
import pickle
import zlib
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import import_attribute

from services.common.settings import Settings

PROCESS_BATCH = "services.consumers.tasks.process_batch"  # the one function a worker runs
SERIALIZER = JSONSerializer
MAX_BATCH_ID = 128  # batch ids are uuid hex (32); anything longer is not ours


class RefusedJob(Exception):
    """A job that is not `process_batch(batch_id)` in JSON: never run, never retried."""


def batch_id_of(job: Job) -> str | None:
    """The batch id of a well-formed job (`process_batch` with one string argument), else None; never raises."""
    try:
        func_name, instance, args, kwargs = job.func_name, job.instance, job.args, job.kwargs
    except DeserializationError:  # not JSON: a pickle, or garbage
        return None
    if func_name != PROCESS_BATCH or instance is not None:
        return None
    return _only_batch_id(args, kwargs)


def _only_batch_id(args: object, kwargs: object) -> str | None:
    if isinstance(args, list | tuple) and isinstance(kwargs, dict):
        if not args and set(kwargs) == {"batch_id"}:
            value = kwargs["batch_id"]
        elif len(args) == 1 and not kwargs:
            value = args[0]
        else:
            return None
        if isinstance(value, str) and 0 < len(value) <= MAX_BATCH_ID:
            return value
    return None


class BatchJob(Job):
    """An RQ job that is always JSON and runs only `process_batch(batch_id)`; no callbacks, ever."""

    def __init__(self, id: str | None = None, connection: redis.Redis | None = None, serializer: object = None) -> None:
        super().__init__(id, connection, serializer=SERIALIZER)  # whatever RQ passes: never pickle

    @property
    def func(self) -> Callable[..., Any]:
        if batch_id_of(self) is None:
            self.retries_left = 0  # a refused job is refused again on every retry: fail it at once
            raise RefusedJob(f"job {self.id} is not {PROCESS_BATCH}(batch_id) in JSON; not run")
        return import_attribute(PROCESS_BATCH)  # type: ignore[return-value]

    # Callback names are job fields any Redis writer could set; mdstack uses none.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


def job_queue(settings: Settings, client: redis.Redis) -> Queue:
    """The RQ queue of batch jobs, JSON-serialized: the one way API, workers and reaper open it."""
    return Queue(settings.QUEUE_NAME, connection=client, serializer=SERIALIZER, job_class=BatchJob)


def enqueue_batch_job(queue: Queue, settings: Settings, batch_id: str, pipeline: Any = None) -> None:
    """`process_batch(batch_id)` with the job id `batch_id`, on `pipeline` when given (inside a MULTI)."""
    # RQ refuses Retry(max=0): JOB_RETRIES=0 means no Retry at all.
    retry = Retry(max=settings.JOB_RETRIES, interval=settings.retry_intervals or 0) if settings.JOB_RETRIES else None
    queue.enqueue_call(
        PROCESS_BATCH,
        kwargs={"batch_id": batch_id},
        job_id=batch_id,
        retry=retry,
        timeout=settings.JOB_TIMEOUT_S,
        result_ttl=settings.JOB_RESULT_TTL_S,
        failure_ttl=settings.JOB_FAILURE_TTL_S,
        pipeline=pipeline,
    )


def all_job_ids(queue: Queue) -> set[str]:
    """Every job RQ still knows of on `queue`: queued, popped, and in each registry (job hashes carry no queue name)."""
    ids = set(queue.get_job_ids()) | set(queue.intermediate_queue.get_job_ids())
    for registry in (
        queue.started_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.scheduled_job_registry,
        queue.deferred_job_registry,
        queue.canceled_job_registry,
    ):
        ids.update(registry.get_job_ids())
    return ids


def job_data(batch_id: str) -> bytes:
    """The `data` field RQ writes for `process_batch(batch_id=...)` with the JSON serializer."""
    return zlib.compress(SERIALIZER.dumps([PROCESS_BATCH, None, [], {"batch_id": batch_id}]))


def is_json(raw: bytes) -> bool:
    """`raw` (a job's data or meta field, compressed or not) is JSON."""
    try:
        json.loads(_decompressed(raw))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both
        return False
    return True


class _PlainData(pickle.Unpickler):
    """Builds only what a pickle holds without importing: str, bytes, numbers, None, tuples, lists, dicts, sets.

    Every opcode that could call something needs a callable, and every callable comes from `find_class`."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def legacy_batch_id(raw: bytes) -> str | None:
    """The batch id in a job's data pickled by an older mdstack (`process_batch(batch_id=...)`), else None."""
    try:
        loaded = _PlainData(io.BytesIO(_decompressed(raw))).load()
    except Exception:  # anything that is not plain data, or not a pickle at all
        return None
    if not isinstance(loaded, tuple) or len(loaded) != 4:
        return None
    func_name, instance, args, kwargs = loaded
    if func_name != PROCESS_BATCH or instance is not None:
        return None
    return _only_batch_id(args, kwargs)


def _decompressed(raw: bytes) -> bytes:
    try:
        return zlib.decompress(raw)
    except zlib.error:  # RQ reads uncompressed data too
        return raw
