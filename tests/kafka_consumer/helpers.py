"""Producing the seed's messages, reading what the consumer made of them (Postgres rows, the dead-letter topic,
its /metrics)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from harness.http import http
from harness.stack import Stack, wait_ready
from services.common import kafka
from services.common.kinds import DLQ, ERROR, LOG, QUEUE, TRADE, Kind
from services.common.settings import Settings


def event(kind: Kind, *, n: int = 0, event_id: str | None = "auto", **fields: Any) -> dict[str, Any]:
    """A value of seed 001 section 2 for `kind`, event_time now; `event_id=None` leaves it out."""
    now = int(time.time() * 1000)
    trade_id = f"T{n}"
    bodies = {
        TRADE: {
            "trade_id": trade_id, "service_name": "validation-service", "event_type": "VALIDATION_SUCCESS",
            "event_status": "SUCCESS", "source_queue": "trade-input", "target_queue": "trade-valid",
            "event_time": now, "message": "Trade validated successfully",
        },
        QUEUE: {
            "service_name": "validation-service", "topic_name": "trade-input", "partition": n % 3,
            "produced_offset": 1000 + n, "consumed_offset": 900 + n, "snapshot_time": now + n,
        },
        DLQ: {
            "trade_id": trade_id, "service_name": "validation-service", "topic_name": "trade-dlq",
            "reason": "Schema validation failed", "event_time": now,
        },
        ERROR: {
            "trade_id": trade_id, "service_name": "pms-core", "error_type": "DB_TIMEOUT",
            "error_message": "Timeout while updating position", "event_time": now,
        },
        LOG: {
            "service_name": "analytics-service", "log_level": "WARN", "log_category": "PROCESSING_DELAY",
            "trade_id": trade_id, "message": "Analytics computation exceeded SLA", "event_time": now,
        },
    }  # fmt: skip
    body = bodies[kind] | fields
    if event_id == "auto":
        body["event_id"] = f"{kind.name}-{n}-{uuid.uuid4().hex[:8]}"
    elif event_id is not None:
        body["event_id"] = event_id
    return body


def produce(settings: Settings, kind: Kind, values: list[Any]) -> Counter[int]:
    """Each value (a dict as JSON, or raw bytes) to the kind's topic, keyed as the seed says; waits for delivery.
    Returns how many landed in each partition."""
    producer = kafka.producer(settings)
    topic = kafka.topics(settings)[kind]
    landed: Counter[int] = Counter()

    def delivered(error: Any, message: Any) -> None:
        assert error is None, error
        landed[message.partition()] += 1

    for value in values:
        if isinstance(value, bytes):
            producer.produce(topic, key=b"raw", value=value, on_delivery=delivered)
        else:
            key = kafka.message_key(kind, value)
            producer.produce(topic, key=key, value=orjson.dumps(value), on_delivery=delivered)
    assert producer.flush(10) == 0
    assert landed.total() == len(values)
    return landed


def rows(settings: Settings, kind: Kind) -> dict[str, int]:
    """Idempotency key (event_key; a tick's event_id) -> number of rows in the kind's table."""
    with psycopg.connect(settings.pg_dsn) as conn:
        query = f"SELECT {kind.conflict}, count(*) FROM {kind.table.name} GROUP BY {kind.conflict}"
        return dict(conn.execute(query).fetchall())


def read_topic(settings: Settings, topic: str, count: int, timeout_s: float = 20.0) -> list[Any]:
    """`count` messages of `topic` from its start (any order across partitions), read without a group."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(kafka.client_config(settings, **{"group.id": "reader", "enable.auto.commit": False}))
    partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            got += [m for m in consumer.consume(count - len(got), 0.5) if m.error() is None]
    finally:
        consumer.close()
    return got


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a /metrics page: (name, sorted labels) -> value."""
    text = http().get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def start_backend(stack: Stack, *, flusher: bool = True, consumers: tuple[str, ...] = ("kafka",)) -> None:
    """A worker, the flusher and the consumer(s), each with /health/*, ready; no API or gateway (not needed)."""
    stack.start("worker-1", service="worker", health=True)
    if flusher:
        stack.start("flusher", health=True)
    for name in consumers:
        stack.start(name, service="kafka-consumer", health=True)
    for url in stack.health.values():
        wait_ready(url, 30)
