"""What `bench.soak` samples from a running stack, and how it checks delivery at the end.

A sample holds: Redis used_memory and, per key family, keys / bytes / keys
without TTL (`keyspace.usage`: SCAN + MEMORY USAGE), RQ's keys of the run's
queue as one group, the RSS of every process (with its children) from /proc,
every table and partition in Postgres' schema `public` (total and index
bytes), the API's GET /system (backlog, queue, its projection) and refusals
from its /metrics, and the events the SSE listener has received.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families
from rq.job import Job

from bench.pipeline_run import TABLES
from harness.sse import is_comment, iter_frames
from harness.stack import Stack
from services.common.keyspace import UNKNOWN, usage
from services.up_status import refusals

RQ_GROUP = "rq (queue)"  # RQ's keys of the run's queue: queue, registries, job hashes, workers
SCAN_COUNT = 1000

RELATIONS_SQL = """
SELECT c.relname, coalesce(parent.relname, c.relname), pg_total_relation_size(c.oid), pg_indexes_size(c.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class parent ON parent.oid = i.inhparent
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY 2, 1
"""


class SseListener:
    """One SSE client on the gateway, as a dashboard would be, counting the events it receives."""

    def __init__(self, gateway_url: str) -> None:
        self.url = f"{gateway_url}/stream"
        self.events = 0
        self.reconnects = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sse-listener", daemon=True)

    def __enter__(self) -> SseListener:
        self._thread.start()
        if not self.connected.wait(30):
            raise TimeoutError(f"no SSE stream from {self.url} after 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)  # the next event or heartbeat wakes the reader

    def _run(self) -> None:
        params = {"types": "symbol.updated,rttm.metrics"}
        while not self._stop.is_set():
            try:
                with httpx.stream("GET", self.url, params=params, timeout=httpx.Timeout(5, read=60)) as response:
                    self.connected.set()
                    for frame in iter_frames(response.iter_bytes()):
                        if self._stop.is_set():
                            return
                        self.events += not is_comment(frame)
            except httpx.HTTPError:
                self.reconnects += 1
                self._stop.wait(0.5)


def rq_usage(client: redis.Redis, queue_name: str) -> dict[str, int]:
    """Keys and bytes of RQ's keys that belong to `queue_name`: named after it, after one of its jobs
    (a job hash whose `origin` is the queue, its results and executions) or after one of its workers."""
    names = [key.decode() for key in client.scan_iter(match="rq:*", count=SCAN_COUNT)]
    jobs = [n for n in names if n.startswith(Job.redis_job_namespace_prefix)]
    with client.pipeline(transaction=False) as pipe:
        for name in jobs:
            pipe.hget(name, "origin")
        pipe.smembers(f"rq:workers:{queue_name}")
        *origins, workers = pipe.execute()
    ours = {queue_name} | {n.rsplit(":", 1)[1] for n, o in zip(jobs, origins, strict=True) if o == queue_name.encode()}
    ours |= {w.decode().rsplit(":", 1)[1] for w in workers}
    mine = [n for n in names if ours.intersection(n.split(":")[1:])]
    with client.pipeline(transaction=False) as pipe:
        for name in mine:
            pipe.memory_usage(name, samples=0)
        sizes = pipe.execute()
    return {"keys": len(mine), "bytes": sum(int(s or 0) for s in sizes)}


def redis_sample(client: redis.Redis, prefix: str, queue_name: str) -> dict[str, Any]:
    info = client.info("memory")
    families = usage(client, prefix)
    return {
        "used_memory": int(info["used_memory"]),
        "used_memory_rss": int(info["used_memory_rss"]),
        "families": {
            name: {"keys": u.keys, "bytes": u.bytes, "without_ttl": u.without_ttl} for name, u in families.items()
        },
        "unknown_names": families[UNKNOWN].names if UNKNOWN in families else [],
        "rq": rq_usage(client, queue_name),
    }


def process_rss(pids: dict[str, int]) -> dict[str, int]:
    """Bytes resident per named process, its child processes included (RQ's scheduler runs as one)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children[ppid].append(int(stat.parent.name))
    out = {}
    for name, pid in pids.items():
        tree, total = [pid], 0
        while tree:
            current = tree.pop()
            total += _rss(current)
            tree += children.get(current, [])
        if total:
            out[name] = total
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pg_relations(conn: psycopg.Connection[Any]) -> dict[str, dict[str, Any]]:
    """Every table of schema public, partitions too: its table (the parent, or itself), total and index bytes."""
    rows = conn.execute(RELATIONS_SQL).fetchall()
    return {
        name: {"table": table, "total": int(total), "indexes": int(indexes)} for name, table, total, indexes in rows
    }


def api_sample(client: httpx.Client) -> dict[str, Any]:
    """Backlog, queue and the API's own projection (GET /system); refusals since the API started (/metrics)."""
    system = client.get("/system").raise_for_status().json()
    text = client.get("/metrics").raise_for_status().text
    refused_items: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mdstack_ingest_refused_total":
                refused_items[sample.labels["reason"]] = int(sample.value)
    return {
        "unflushed_items": system["unflushed_items"],
        "flush_backlog": system["flush_backlog"],
        "queue": system["queue"],
        "api_projected_bytes": system["redis"]["projected_bytes"],
        "api_rates": system["redis"]["rates"],
        "refused_answers": refusals(text),
        "refused_items": refused_items,
    }


class Probe:
    """Takes one sample of everything, on connections opened once."""

    def __init__(self, stack: Stack, listener: SseListener) -> None:
        self.stack = stack
        self.listener = listener
        self.redis = redis.Redis.from_url(stack.settings.redis_url)
        self.pg = psycopg.connect(stack.settings.pg_dsn, autocommit=True)
        headers = {"x-api-key": stack.settings.API_KEY} if stack.settings.API_KEY else {}
        self.api = httpx.Client(base_url=stack.api_url, headers=headers, timeout=30)

    def sample(self, t: float, phase: str) -> dict[str, Any]:
        started = time.monotonic()
        settings = self.stack.settings
        out: dict[str, Any] = {"t": round(t, 2), "phase": phase}
        out["redis"] = redis_sample(self.redis, settings.KEY_PREFIX, settings.QUEUE_NAME)
        out["rss"] = process_rss({name: p.pid for name, p in self.stack.processes.items() if p.poll() is None})
        out["postgres"] = pg_relations(self.pg)
        try:
            out["api"] = api_sample(self.api)
        except (httpx.HTTPError, KeyError) as exc:
            out["api"] = {"error": f"{type(exc).__name__}: {exc}"}
        out["sse_events"] = self.listener.events
        out["sample_s"] = round(time.monotonic() - started, 3)  # what sampling itself cost
        return out

    def close(self) -> None:
        self.redis.close()
        self.pg.close()
        self.api.close()


def tick_delivery(conn: psycopg.Connection[Any], acked_file: Path) -> dict[str, int]:
    """Acknowledged ticks (distinct ids), how many of them are in md_ticks, and rows beyond one per id."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS soak_acked (event_id text) ON COMMIT PRESERVE ROWS")
    conn.execute("TRUNCATE soak_acked")
    with conn.cursor().copy("COPY soak_acked (event_id) FROM STDIN") as copy, acked_file.open("rb") as ids:
        while chunk := ids.read(1 << 20):  # one id a line: COPY's own text format
            copy.write(chunk)
    row = conn.execute(
        "SELECT (SELECT count(DISTINCT event_id) FROM soak_acked),"
        " (SELECT count(*) FROM (SELECT DISTINCT event_id FROM soak_acked) a"
        "  WHERE EXISTS (SELECT 1 FROM md_ticks t WHERE t.event_id = a.event_id)),"
        " (SELECT count(*) - count(DISTINCT event_id) FROM md_ticks),"
        " (SELECT count(*) FROM md_ticks)"
    ).fetchone()
    assert row is not None
    acked, found, duplicates, rows = map(int, row)
    return {"acknowledged": acked, "persisted": found, "missing": acked - found, "duplicates": duplicates, "rows": rows}


def event_delivery(conn: psycopg.Connection[Any], acked_file: Path) -> dict[str, dict[str, int]]:
    """Per kind of trade-pipeline event: acknowledged ids (the feeder's `kind id` lines) and how many are stored."""
    acked: dict[str, set[str]] = {kind: set() for kind in TABLES}
    for line in acked_file.read_text().splitlines():
        kind, event_id = line.split()
        acked[kind].add(event_id)
    out = {}
    for kind, table in TABLES.items():
        ids = list(acked[kind])
        row = conn.execute(f"SELECT count(DISTINCT event_id) FROM {table} WHERE event_id = ANY(%s)", (ids,)).fetchone()
        found = int(row[0]) if row else 0
        out[kind] = {"acknowledged": len(ids), "persisted": found, "missing": len(ids) - found}
    return out


def row_counts(conn: psycopg.Connection[Any], tables: set[str]) -> dict[str, int]:
    out = {}
    for table in sorted(tables):
        row = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        out[table] = int(row[0]) if row else 0
    return out
