"""Keys an earlier mdstack left in Redis, brought to today's shapes when the API starts.

Earlier versions kept `symbols` as a set (now a sorted set by last tick) and a
batch as a string (now a hash whose `items` field the job reads). Both would
make every commit, or the jobs in flight, fail with WRONGTYPE. The old
per-event dedup keys and per-batch `applied:` markers are no family any more;
they carry their own TTLs (24 h, 7 days) and simply expire.

Earlier versions also let RQ pickle its jobs; workers now read JSON only
(services/common/jobs.py) and refuse anything else. A pickled job an older API
left is rewritten as JSON when it is `process_batch(batch_id)` (read without
importing anything: no code runs), and deleted with a log line otherwise.
"""

from __future__ import annotations

import time

import redis
import redis.asyncio as aioredis

from services.common.jobs import BatchJob, all_job_ids, is_json, job_data, job_queue, legacy_batch_id
from services.common.keys import Keys
from services.common.logging import get_logger
from services.common.settings import Settings
from services.orchestrator_api.defaults import UPGRADE_CHUNK

log = get_logger(__name__)


async def upgrade_keys(client: aioredis.Redis, keys: Keys) -> dict[str, int]:
    """Convert what is in an old shape; returns how many keys of each kind were converted."""
    done = {"symbols": 0, "batches": 0}
    if await client.type(keys.symbols) == b"set":
        members = await client.smembers(keys.symbols)
        now_ms = time.time() * 1000
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.symbols)
            if members:
                pipe.zadd(keys.symbols, dict.fromkeys(members, now_ms))
            await pipe.execute()
        done["symbols"] = 1
    async for name in client.scan_iter(match=keys.batch_prefix + "*", count=1000, _type="string"):
        ttl = await client.ttl(name)
        body = await client.get(name)
        if body is None:
            continue
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(name, "items", body)
            if ttl > 0:
                pipe.expire(name, ttl)
            await pipe.execute()
        done["batches"] += 1
    if any(done.values()):
        log.warning("api.redis_keys_upgraded", **done)
    return done


def upgrade_jobs(client: redis.Redis, settings: Settings) -> dict[str, int]:
    """Rewrite the pickled jobs of an older version as JSON, or delete them; returns how many of each."""
    done = {"converted": 0, "dropped": 0}
    queue = job_queue(settings, client)
    ids = sorted(all_job_ids(queue))
    for start in range(
        0, len(ids), UPGRADE_CHUNK
    ):  # a full queue is tens of thousands of jobs: one round trip each chunk
        chunk = ids[start : start + UPGRADE_CHUNK]
        with client.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(BatchJob.key_for(job_id), "data", "meta")
            fields = pipe.execute()
        for job_id, (data, meta) in zip(chunk, fields, strict=True):
            if data is not None and not is_json(data):
                done[_upgrade_job(client, settings, job_id, data, meta)] += 1
    if any(done.values()):
        log.warning("api.pickled_jobs_upgraded", queue=settings.QUEUE_NAME, **done)
    return done


def _upgrade_job(client: redis.Redis, settings: Settings, job_id: str, data: bytes, meta: bytes | None) -> str:
    batch_id = legacy_batch_id(data)
    if batch_id is None:  # not a job mdstack wrote: nothing to convert it to, and it must never run
        BatchJob.fetch(job_id, connection=client).delete()
        log.warning("api.pickled_job_dropped", trace_id=job_id, queue=settings.QUEUE_NAME)
        return "dropped"
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(BatchJob.key_for(job_id), "data", job_data(batch_id))
        if meta is not None and not is_json(meta):  # mdstack sets no meta; a pickled one is not kept
            pipe.hdel(BatchJob.key_for(job_id), "meta")
        pipe.execute()
    return "converted"
