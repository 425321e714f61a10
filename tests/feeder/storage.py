"""The real flusher, run inline, to see what reached Postgres."""

from __future__ import annotations

import time

import psycopg
import redis

from services.common.settings import Settings
from services.orchestrator_api.flusher import Flusher


def flush_to_postgres(settings: Settings, expected: int, timeout_s: float = 10.0) -> dict[str, int]:
    """Run the real flusher until `expected` ticks are in md_ticks; returns {event_id: row count}."""
    client = redis.Redis.from_url(settings.redis_url)
    flusher = Flusher(settings, client, "feeder-tests")
    try:
        flusher.ensure_group()
        deadline = time.monotonic() + timeout_s
        rows = stored_ticks(settings)
        while sum(rows.values()) < expected and time.monotonic() < deadline:
            flusher.flush_once()
            rows = stored_ticks(settings)
        return rows
    finally:
        flusher.close()
        client.close()


def stored_ticks(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.pg_dsn) as conn:
        return dict(conn.execute("SELECT event_id, count(*) FROM md_ticks GROUP BY event_id").fetchall())
