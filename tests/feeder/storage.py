"""The real flusher, run inline, to see what reached Postgres."""

from __future__ import annotations

import time

import psycopg
import redis

from services.common.kinds import KINDS
from services.common.settings import Settings
from services.flusher.writer import Flusher


def flush_to_postgres(settings: Settings, expected: int, timeout_s: float = 10.0) -> dict[str, int]:
    """Run the real flusher until `expected` ticks are in md_ticks; returns {event_id: row count}."""
    return flush_kinds_to_postgres(settings, {"tick": expected}, timeout_s)["tick"]


def flush_kinds_to_postgres(
    settings: Settings, expected: dict[str, int], timeout_s: float = 10.0
) -> dict[str, dict[str, int]]:
    """Run the real flusher until each kind's table holds `expected[kind]` rows; {kind: {event_id: rows}}."""
    client = redis.Redis.from_url(settings.redis_url)
    flusher = Flusher(settings, client, "feeder-tests")
    try:
        flusher.ensure_group()
        deadline = time.monotonic() + timeout_s
        rows = stored(settings, list(expected))
        while any(sum(rows[k].values()) < n for k, n in expected.items()) and time.monotonic() < deadline:
            flusher.flush_once()
            rows = stored(settings, list(expected))
        return rows
    finally:
        flusher.close()
        client.close()


def stored(settings: Settings, kinds: list[str]) -> dict[str, dict[str, int]]:
    """{kind: {event_id: row count}} of each kind's table."""
    with psycopg.connect(settings.pg_dsn) as conn:
        return {
            kind: dict(
                conn.execute(f"SELECT event_id, count(*) FROM {KINDS[kind].table.name} GROUP BY event_id").fetchall()
            )
            for kind in kinds
        }


def truncate(settings: Settings, kinds: list[str]) -> None:
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(KINDS[kind].table.name for kind in kinds))
