"""What the bad-input and security suites send, and what it left in Redis and Postgres."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from typing import Any

import orjson
import psycopg
import pytest
import redis

from services.common.keys import Keys
from services.common.kinds import KINDS
from services.common.settings import Settings
from services.flusher.writer import Flusher
from services.orchestrator_api.app import create_app
from services.realtime_gateway.app import create_app as create_gateway
from tests.factories import make_tick
from tests.orchestrator_api.test_rttm_api import now_ms, trade_events


@functools.cache
def openapi(service: str) -> dict[str, Any]:
    """The OpenAPI document of the "api" or the "gateway", built once: it costs a few hundred ms, and does not
    depend on settings."""
    factory = {"api": create_app, "gateway": create_gateway}[service]
    return factory(Settings(MDSTACK_ENV="test")).openapi()


# Every ingest test runs on the ASGI fast path and on the FastAPI routes: same answers (see conftest.settings).
BOTH_PATHS = pytest.mark.parametrize("settings", [True, False], ids=["fastpath", "router"], indirect=True)

# Every ingest route with the kind it stores and a valid item of it (keyword changes apply on top).
INGEST: dict[str, tuple[str, Any]] = {
    "/ingest/tick": ("tick", make_tick),
    "/ingest/ticks": ("tick", make_tick),
    "/ingest/trade-events": ("trade", lambda: trade_events(uuid.uuid4().hex[:12], now_ms(), stages=1)[0]),
    "/ingest/queue-metrics": (
        "queue",
        lambda: {
            "service_name": "svc",
            "topic_name": "t",
            "partition": 1,
            "produced_offset": 9,
            "consumed_offset": 7,
            "snapshot_time": now_ms(),
            "event_id": uuid.uuid4().hex,
        },
    ),
    "/ingest/dlq-events": (
        "dlq",
        lambda: {
            "trade_id": "T1",
            "service_name": "svc",
            "topic_name": "t-dlq",
            "reason": "bad schema",
            "event_time": now_ms(),
            "event_id": uuid.uuid4().hex,
        },
    ),
    "/ingest/error-events": (
        "error",
        lambda: {
            "trade_id": "T1",
            "service_name": "svc",
            "error_type": "DB_TIMEOUT",
            "error_message": "slow",
            "event_time": now_ms(),
            "event_id": uuid.uuid4().hex,
        },
    ),
    "/ingest/log-events": (
        "log",
        lambda: {
            "service_name": "svc",
            "log_level": "WARN",
            "log_category": "DELAY",
            "message": "late",
            "event_time": now_ms(),
            "event_id": uuid.uuid4().hex,
        },
    ),
}


def make_item(path: str, **change: Any) -> dict[str, Any]:
    """A valid item for the ingest route `path`, with `change` applied."""
    return {**INGEST[path][1](), **change}


def as_body(path: str, item: dict[str, Any]) -> Any:
    """`item` as `path` takes it: /ingest/ticks only takes arrays."""
    return [item] if path == "/ingest/ticks" else item


NOTHING: dict[str, dict[str, list[str]]] = {"queued": {}, "flush": {}}  # `redis_keys` when nothing was stored


def redis_keys(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """By kind, the idempotency keys Redis holds for the workers (the pending batches, in commit order) and for
    Postgres (the flush stream), in order: what an accepted request wrote, and nothing a refused one could have."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.KEY_PREFIX)
    bodies = [client.hget(keys.batch(b.decode()), "items") for b in client.zrange(keys.pending, 0, -1)]
    out: dict[str, dict[str, list[str]]] = {"queued": defaultdict(list), "flush": defaultdict(list)}
    for where, raws in (("queued", bodies), ("flush", [f[b"items"] for _, f in client.xrange(keys.flush_stream)])):
        for raw in raws:
            for kind, items in orjson.loads(raw).items():
                out[where][kind] += [item[KINDS[kind].conflict] for item in items]
    client.close()
    return {where: dict(by_kind) for where, by_kind in out.items()}


def postgres_keys(settings: Settings) -> dict[str, list[str]]:
    """Flush what Redis buffers into Postgres (the flusher's own code); then by kind, the idempotency keys there."""
    client = redis.Redis.from_url(settings.redis_url)
    settings.FLUSH_INTERVAL_MS = 50
    flusher = Flusher(settings, client, "security-tests")
    flusher.ensure_group()
    flusher.flush_once()
    flusher.close()
    client.close()
    out = {}
    with psycopg.connect(settings.pg_dsn) as conn:
        for name, kind in KINDS.items():
            rows = conn.execute(f"SELECT {kind.conflict} FROM {kind.table.name} ORDER BY 1").fetchall()
            if rows:
                out[name] = [r[0] for r in rows]
    return out
