"""Kafka consumer faults: kill -9 in the middle of the work, and a second consumer joining the group (a
rebalance). Either way every message is in Postgres exactly once: offsets move only after the group commit,
and a redelivered message carries the same key (its event_id, or where it sits in the log)."""

from __future__ import annotations

import threading
import time

import pytest

from harness.stack import Stack, wait_ready
from services.common.kinds import TRADE
from services.common.settings import Settings
from tests.kafka_consumer.helpers import event, produce, rows, scrape, start_backend, total, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.fault, pytest.mark.timeout(240)]
TOPIC_METRIC = "mdstack_kafka_messages_total"


def test_a_consumer_killed_mid_batch_loses_and_duplicates_nothing(stack: Stack, kafka_settings: Settings) -> None:
    stack.env.update(KAFKA_BATCH="100")
    # Half with an event_id, half without (keyed by partition and offset, the same on redelivery).
    values = [event(TRADE, n=n, event_id="auto" if n % 2 else None) for n in range(6000)]
    produce(kafka_settings, TRADE, values)
    start_backend(stack)
    first = stack.health["kafka"]
    topic = kafka_settings.KAFKA_TOPIC_TRADE
    wait_for(lambda: total(scrape(first), TOPIC_METRIC, topic=topic) >= 600, 60, "the consumer under way")
    stack.kill("kafka")  # SIGKILL: no batch finished, no offset committed, no group left
    before = len(rows(kafka_settings, TRADE))
    assert before < len(values), "the kill came after the end: nothing was tested"

    stack.restart("kafka")
    wait_ready(stack.health["kafka"], 30)
    wait_for(lambda: len(rows(kafka_settings, TRADE)) == len(values), 90, "every message in Postgres")
    stored = rows(kafka_settings, TRADE)
    assert set(stored.values()) == {1}
    assert {v["event_id"] for v in values if "event_id" in v} <= set(stored)
    assert sum(key.startswith(f"@kafka|{topic}|") for key in stored) == len(values) // 2
    second = scrape(stack.health["kafka"])
    accepted = total(second, TOPIC_METRIC, topic=topic, outcome="accepted")
    duplicates = total(second, TOPIC_METRIC, topic=topic, outcome="duplicate")
    # The second consumer read from the last committed offsets: what the first had stored and not committed
    # came again, as duplicates; the rest it accepted.
    assert 0 < accepted < len(values)
    assert accepted + duplicates <= len(values)
    print(f"kill -9: {before} rows before, restart accepted {accepted:.0f}, duplicates {duplicates:.0f}")  # noqa: T201


def test_a_second_consumer_joining_loses_and_duplicates_nothing(stack: Stack, kafka_settings: Settings) -> None:
    stack.env.update(KAFKA_BATCH="50")
    start_backend(stack, consumers=("kafka-1",))
    values = [event(TRADE, n=n, event_id="auto" if n % 3 else None) for n in range(3000)]
    stop = threading.Event()

    def feed() -> None:  # a steady producer, so the rebalance falls in the middle of the work
        for i in range(0, len(values), 100):
            if stop.is_set():
                return
            produce(kafka_settings, TRADE, values[i : i + 100])
            time.sleep(0.1)

    producer = threading.Thread(target=feed)
    producer.start()
    try:
        topic = kafka_settings.KAFKA_TOPIC_TRADE
        wait_for(lambda: total(scrape(stack.health["kafka-1"]), TOPIC_METRIC, topic=topic) >= 300, 60, "kafka-1")
        stack.start("kafka-2", service="kafka-consumer", health=True)
        wait_ready(stack.health["kafka-2"], 30)
        wait_for(lambda: total(scrape(stack.health["kafka-2"]), TOPIC_METRIC, topic=topic) > 0, 60, "kafka-2's share")
    except BaseException:
        stop.set()
        raise
    finally:
        producer.join()
    wait_for(lambda: len(rows(kafka_settings, TRADE)) == len(values), 90, "every message in Postgres")
    stored = rows(kafka_settings, TRADE)
    assert set(stored.values()) == {1}
    assert sum(key.startswith(f"@kafka|{topic}|") for key in stored) == len(values) // 3

    one, two = scrape(stack.health["kafka-1"]), scrape(stack.health["kafka-2"])
    assert total(one, "mdstack_kafka_rebalances_total", topic=topic, change="revoked") >= 1
    assert total(two, "mdstack_kafka_rebalances_total", topic=topic, change="assigned") >= 1
    accepted = [total(s, TOPIC_METRIC, topic=topic, outcome="accepted") for s in (one, two)]
    assert sum(accepted) == len(values)
    assert all(a > 0 for a in accepted)

    def lag() -> float:
        return sum(
            total(scrape(stack.health[n]), "mdstack_kafka_consumer_lag", topic=topic) for n in ("kafka-1", "kafka-2")
        )

    wait_for(lambda: lag() == 0, 15, "no lag in either consumer")
