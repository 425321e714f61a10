"""Keys an earlier mdstack left in Redis, brought to today's shapes when the API starts.

Earlier versions kept `symbols` as a set (now a sorted set by last tick) and a
batch as a string (now a hash whose `items` field the job reads). Both would
make every commit, or the jobs in flight, fail with WRONGTYPE. The old
per-event dedup keys and per-batch `applied:` markers are no family any more;
they carry their own TTLs (24 h, 7 days) and simply expire.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from services.common.keys import Keys
from services.common.logging import get_logger

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
