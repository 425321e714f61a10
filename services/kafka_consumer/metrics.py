"""Prometheus metrics of the Kafka consumer, beside the ingest ones it shares with the API
(mdstack_ingest_items_total by kind and outcome, the group commit's histograms and refusals)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MESSAGES = Counter(
    "mdstack_kafka_messages_total",
    "Messages consumed, by what became of them: accepted, duplicate (already stored), dead_lettered",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "mdstack_kafka_dead_letters_total", "Messages sent to the dead-letter topic, by reason", ["topic", "reason"]
)
LAG = Gauge(
    "mdstack_kafka_consumer_lag",
    "Messages of a partition not yet committed by this consumer (high watermark - committed offset)",
    ["topic", "partition"],
)
COMMITTED = Gauge("mdstack_kafka_committed_offset", "The consumer group's committed offset", ["topic", "partition"])
PAUSED = Gauge("mdstack_kafka_paused", "1 while the topic's partitions are paused by back-pressure", ["topic"])
PAUSES = Counter("mdstack_kafka_pauses_total", "Times a refused batch paused the partitions", ["topic"])
RETRIES = Counter("mdstack_kafka_retries_total", "Attempts to store a batch again after a refusal", ["topic", "reason"])
COMMIT_FAILURES = Counter(
    "mdstack_kafka_offset_commit_failures_total",
    "Offset commits refused by the broker (a rebalance took the partition; the next owner redoes the messages)",
    ["topic"],
)
REBALANCES = Counter("mdstack_kafka_rebalances_total", "Partitions assigned or revoked", ["topic", "change"])
