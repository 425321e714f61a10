"""Tells the API whether any client of this gateway wants `tick.received`, one event per tick.

By default the API publishes ticks merged per symbol (`ticks.merged`, orchestrator_api/ingest/merged.py):
an event per tick costs Redis and every gateway at every tick, for clients that draw a few frames a second.
While a client here names `tick.received` in `?types=`, this keeps `Keys.ticks_wanted` alive (renewed every
TICKS_WANTED_REFRESH_S, expiring TICKS_WANTED_TTL_S after the last renewal), and the API publishes both.
A client that joins is told at once; one that resumes with Last-Event-ID within the TTL misses no tick.
"""

from __future__ import annotations

import asyncio
import contextlib

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.keys import Keys
from services.common.logging import get_logger
from services.realtime_gateway.defaults import TICKS_WANTED_REFRESH_S, TICKS_WANTED_TTL_S
from services.realtime_gateway.hub import Hub

log = get_logger(__name__)


async def keep_ticks_wanted(hub: Hub, client: aioredis.Redis, keys: Keys) -> None:
    """Until cancelled: renew the flag while `hub` has a per-tick client."""
    while True:
        hub.per_tick_asked.clear()  # before looking: a client joining after this wakes the wait below
        if hub.per_tick_clients:
            try:
                await client.set(keys.ticks_wanted, b"1", ex=TICKS_WANTED_TTL_S)
            except (RedisError, OSError) as exc:  # the hub reports Redis lost; per-tick events wait for it
                log.warning("gateway.ticks_wanted_unset", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.per_tick_asked.wait(), TICKS_WANTED_REFRESH_S)
