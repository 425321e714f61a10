"""The health/metrics server of processes without an HTTP API (worker, flusher)."""

from __future__ import annotations

import httpx
import orjson
import pytest
import redis

from harness.http import client_tls
from services.common.embedded import free_port
from services.common.health import (
    Postgres,
    PostgresProbe,
    check_redis_sync,
    readiness_body,
    readiness_problems_sync,
    serve_health,
)
from services.common.settings import Settings


def test_serves_liveness_readiness_and_metrics(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    down = PostgresProbe(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    up = PostgresProbe(settings.pg_dsn)
    state = {"probe": up}

    def readiness() -> list[str]:
        return [p for p in (check_redis_sync(client), state["probe"]()) if p]

    port = free_port()
    server = serve_health("127.0.0.1", port, readiness, cache_s=0)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=base, verify=client_tls()
        ) as http:  # one client: each client's TLS setup costs 30-300 ms
            assert http.get("/health/liveness").json() == {"status": "alive"}
            assert http.get("/health/readiness").json() == {"status": "ready"}
            state["probe"] = down
            not_ready = http.get("/health/readiness")
            assert not_ready.status_code == 503
            assert not_ready.json()["problems"] == ["postgres: unavailable"]
            assert "python_info" in http.get("/metrics").text
            assert http.get("/nope").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
        client.close()
        up.close()


@pytest.mark.parametrize(
    ("postgres", "status", "body"),
    [
        ("required", 503, {"status": "unavailable", "problems": ["postgres: unavailable"], "degraded": []}),
        ("optional", 200, {"status": "degraded", "degraded": ["postgres: unavailable"]}),
        ("unused", 200, {"status": "ready"}),
    ],
)
def test_postgres_down_fails_readiness_only_where_it_is_required(
    settings: Settings, postgres: Postgres, status: int, body: dict
) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    down = PostgresProbe(f"postgresql://postgres@127.0.0.1:{free_port()}/test")

    code, raw = readiness_body(readiness_problems_sync(client, down, postgres))

    assert (code, orjson.loads(raw)) == (status, body)
    client.close()
