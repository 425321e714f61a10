"""What a worker process holds for its jobs: settings, Redis, and an HTTP client to the API.

RQ job functions take only their arguments, so the worker entry point calls
`configure()` once; a job run by a plain `rq worker` configures itself from
the environment on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import redis

from services.common.redis import sync_redis
from services.common.settings import Settings, load_settings
from services.consumers.defaults import HTTP_TIMEOUT_S


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    http: httpx.Client

    def close(self) -> None:
        self.http.close()
        self.redis.close()


_context: WorkerContext | None = None


def configure(settings: Settings) -> WorkerContext:
    global _context
    if _context is not None:
        _context.close()
    _context = WorkerContext(
        settings=settings,
        redis=sync_redis(settings),
        http=httpx.Client(
            base_url=settings.api_url,
            timeout=HTTP_TIMEOUT_S,
            headers={"x-internal-token": settings.INTERNAL_TOKEN, "content-type": "application/json"},
        ),
    )
    return _context


def get() -> WorkerContext:
    return _context or configure(load_settings(SERVICE_NAME="worker"))
