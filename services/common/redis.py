"""Redis client factories (sync for RQ and group commit, asyncio for the web services)."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from services.common.settings import Settings

SOCKET_TIMEOUT_S = 5.0  # a dead server must surface as an error, not a hang
HEALTH_CHECK_S = 15  # re-validate idle pooled connections after a Redis restart


def sync_redis(settings: Settings, **kwargs: object) -> redis.Redis:
    options: dict = {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_S,
        "retry_on_timeout": False,
    }
    options.update(kwargs)
    return redis.Redis.from_url(settings.redis_url, **options)


def async_redis(settings: Settings, **kwargs: object) -> aioredis.Redis:
    options: dict = {
        "socket_connect_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": HEALTH_CHECK_S,
    }
    options.update(kwargs)
    return aioredis.Redis.from_url(settings.redis_url, **options)
