"""The soak bench's measuring parts on the real servers: RQ's keys of one queue, RSS of a process tree,
Postgres relations with partitions, slopes and the problems it must shout about."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import uuid

import psycopg
import pytest
import redis
from rq import Queue

from bench.soak import setting
from bench.soak_probe import pg_relations, process_rss, rq_usage
from bench.soak_report import problems, slope_per_min
from services.common.keyspace import UNKNOWN
from services.common.settings import Settings


def test_rq_usage_counts_the_keys_of_its_queue_and_its_jobs_only(settings: Settings, client: redis.Redis) -> None:
    other = Queue(f"{settings.QUEUE_NAME}-other", connection=client)
    ours = Queue(settings.QUEUE_NAME, connection=client)
    try:
        other.enqueue("builtins.len", "x", job_id=uuid.uuid4().hex)
        assert rq_usage(client, settings.QUEUE_NAME) == {"keys": 0, "bytes": 0}
        job = ours.enqueue("builtins.len", "abc", job_id=uuid.uuid4().hex)
        measured = rq_usage(client, settings.QUEUE_NAME)
        names = [f"rq:queue:{settings.QUEUE_NAME}", job.key]  # the queue's list and the job's hash
        assert measured == {"keys": 2, "bytes": sum(int(client.memory_usage(n, samples=0) or 0) for n in names)}
    finally:
        for queue in (ours, other):
            for job_id in queue.get_job_ids():
                client.delete(f"rq:job:{job_id}")
            queue.delete(delete_jobs=True)


# The child's pid is passed on only once the child says it runs: read just after its fork, while it was
# still exec'ing Python, its RSS was one page (4096 B), and the test failed on a loaded machine.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "print(flush=True); import time; time.sleep(60)"],
                         stdout=subprocess.PIPE)
child.stdout.readline()
print(child.pid, flush=True)
try:
    time.sleep(60)
finally:
    child.kill()
"""


@pytest.mark.e2e
def test_process_rss_adds_the_children_of_a_process() -> None:
    with subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True) as parent:
        try:
            assert parent.stdout is not None
            child = int(parent.stdout.readline())
            alone = process_rss({"child": child})["child"]
            together = process_rss({"parent": parent.pid})["parent"]
            assert alone > 1024 * 1024
            assert together > alone  # the parent's own pages on top of its child's
        finally:
            parent.terminate()  # its `finally` ends the child


def test_pg_relations_lists_partitions_under_their_table(settings: Settings) -> None:
    table = f"soak_probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (ts date NOT NULL, v text) PARTITION BY RANGE (ts)")
        conn.execute(f"CREATE TABLE {table}_d1 PARTITION OF {table} FOR VALUES FROM ('2026-01-01') TO ('2026-01-02')")
        conn.execute(f"CREATE TABLE {table}_d2 PARTITION OF {table} FOR VALUES FROM ('2026-01-02') TO ('2026-01-03')")
        conn.execute(f"CREATE INDEX ON {table} (v)")
        conn.execute(f"INSERT INTO {table} SELECT '2026-01-01', repeat('x', 100) FROM generate_series(1, 1000)")
        try:
            relations = pg_relations(conn)
            d1, d2 = relations[f"{table}_d1"], relations[f"{table}_d2"]
            assert table not in relations  # a partitioned table has no storage of its own
            assert d1["table"] == d2["table"] == table
            assert d1["total"] > d2["total"] > 0
            assert 0 < d1["indexes"] < d1["total"]
            assert any(r["table"] == "md_ticks" for r in relations.values())  # itself, or its daily partitions
        finally:
            conn.execute(f"DROP TABLE {table}")


def test_slope_is_the_least_squares_fit_per_minute() -> None:
    assert slope_per_min([(0.0, 10.0), (30.0, 20.0), (60.0, 30.0)]) == pytest.approx(20.0)
    # covariance 40 over variance 500: 0.08 a second
    assert slope_per_min([(0.0, 1.0), (10.0, 3.0), (20.0, 2.0), (30.0, 4.0)]) == pytest.approx(4.8)
    assert slope_per_min([(5.0, 1.0)]) is None
    assert slope_per_min([(5.0, 1.0), (5.0, 2.0)]) is None


def test_problems_name_keys_of_no_family_and_ttl_families_without_ttl() -> None:
    samples = [
        {"t": 5.0, "redis": {"families": {}, "unknown_names": []}},
        {
            "t": 10.0,
            "redis": {"families": {UNKNOWN: {"keys": 2, "bytes": 90}}, "unknown_names": ["md:applied:1", "md:x"]},
        },
    ]
    families = [
        {"family": "dedup", "bound": "ttl", "without_ttl_max": 3},
        {"family": "flush", "bound": "entries", "without_ttl_max": 1},  # a stream is bounded otherwise
        {"family": "view", "bound": "ttl", "without_ttl_max": 0},
    ]
    assert problems(samples, families) == [
        "2 keys of no family (at 10.0 s), e.g. md:applied:1, md:x",
        "family dedup is TTL-bound but had 3 keys without a TTL",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DEDUP_WINDOW_S", "expected NAME=VALUE, got 'DEDUP_WINDOW_S'"),
        ("DEDUP_WINDOWS=30", "DEDUP_WINDOWS is not a setting (services/common/settings.py, feeder/settings.py)"),
        ("KEY_PREFIX=x:", "KEY_PREFIX is set by the bench for each run"),
        ("DEDUP_WINDOW_S=soon", "DEDUP_WINDOW_S=soon: Input should be a valid integer"),
    ],
)
def test_env_overrides_are_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
        setting(text)
    assert setting("DEDUP_WINDOW_S=30") == ("DEDUP_WINDOW_S", "30")
