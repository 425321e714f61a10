"""The Kafka consumer against a real broker, with the real worker and flusher processes behind it: every topic
into its table once, back-pressure that pauses and drains, bad messages dead-lettered while the rest goes on."""

from __future__ import annotations

import time

import orjson
import psycopg
import pytest

from harness.http import http
from harness.stack import Stack
from services.common import kafka
from services.common.embedded import EmbeddedKafka
from services.common.events import kafka_key
from services.common.kinds import DLQ, ERROR, LOG, QUEUE, TRADE
from services.common.settings import Settings
from tests.kafka_consumer.conftest import PARTITIONS
from tests.kafka_consumer.helpers import event, produce, read_topic, rows, scrape, start_backend, total, wait_for

pytestmark = pytest.mark.e2e
RTTM = (TRADE, QUEUE, DLQ, ERROR, LOG)


def test_every_topic_lands_in_its_table_once_whatever_kafka_redelivers(stack: Stack, kafka_settings: Settings) -> None:
    sent: dict[str, set[str]] = {}
    for kind in RTTM:
        values = [event(kind, n=n) for n in range(40)]
        produce(kafka_settings, kind, values + values[:10])  # a producer that retried: the same ids again
        sent[kind.name] = {v["event_id"] for v in values}
    # Without an event_id, where the message sits in the log is its key.
    produce(kafka_settings, LOG, [event(LOG, n=100 + n, event_id=None) for n in range(5)])
    start_backend(stack)

    def landed() -> bool:
        return all(len(rows(kafka_settings, k)) == len(sent[k.name]) + (5 if k is LOG else 0) for k in RTTM)

    wait_for(landed, 60, "every event in Postgres")
    for kind in RTTM:
        stored = rows(kafka_settings, kind)
        assert set(stored.values()) == {1}, kind.name
        if kind is LOG:
            derived = {key for key in stored if key.startswith("@kafka|")}
            assert len(derived) == 5
            assert all(key.startswith(f"@kafka|{kafka_settings.KAFKA_TOPIC_LOG}|") for key in derived)
            assert set(stored) - derived == sent["log"]
        else:
            assert set(stored) == sent[kind.name], kind.name

    metrics = stack.health["kafka"]
    wait_for(lambda: total(scrape(metrics), "mdstack_kafka_consumer_lag") == 0, 15, "no lag")
    samples = scrape(metrics)
    for kind in RTTM:
        topic = kafka.topics(kafka_settings)[kind]
        extra = 5 if kind is LOG else 0
        assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="accepted") == 40 + extra
        assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="duplicate") == 10
        assert total(samples, "mdstack_kafka_committed_offset", topic=topic) == 50 + extra
        assert total(samples, "mdstack_ingest_items_total", kind=kind.name, outcome="accepted") == 40 + extra


def test_kafka_key_is_one_a_client_cannot_send() -> None:
    key = kafka_key("rttm.log.events", 2, 17)
    assert key == "@kafka|rttm.log.events|2|17"
    assert event(LOG, event_id=key)  # the factory takes it, the API's model does not:
    from services.common.events import LogEventIn

    with pytest.raises(ValueError, match="event_id"):
        LogEventIn.model_validate(event(LOG, event_id=key))


def test_refused_batches_pause_the_partitions_and_drain_with_nothing_lost(
    stack: Stack, kafka_settings: Settings
) -> None:
    # Without a flusher nothing reaches Postgres: past 30 items in Redis the committer refuses (as the API's 503).
    stack.env.update(INGEST_MAX_BACKLOG="30", KAFKA_BATCH="20", INGEST_RETRY_AFTER_S="1")
    values = [event(TRADE, n=n) for n in range(300)]
    landed = produce(kafka_settings, TRADE, values)
    start_backend(stack, flusher=False)
    metrics = stack.health["kafka"]
    topic = kafka_settings.KAFKA_TOPIC_TRADE
    wait_for(lambda: total(scrape(metrics), "mdstack_kafka_paused", topic=topic) == 1, 30, "the pause")
    paused = scrape(metrics)
    held = total(paused, "mdstack_kafka_messages_total", topic=topic)
    assert 0 < held < 300

    last: dict[int, tuple[float | None, float]] = {}

    def lag_is_what_is_not_committed() -> bool:
        """The lag gauges are refreshed each LAG_EVERY_S, also while paused, from the high watermarks the fetches
        saw. A partition paused before its first fetch has none yet (and has committed nothing): no gauge."""
        now = scrape(metrics)
        for p in range(PARTITIONS):
            at = {"topic": topic, "partition": str(p)}
            lag = now.get(("mdstack_kafka_consumer_lag", tuple(sorted(at.items()))))
            last[p] = (lag, total(now, "mdstack_kafka_committed_offset", **at))
        known = [p for p, (lag, _) in last.items() if lag is not None]
        return bool(known) and all(
            (lag == landed[p] - committed) if lag is not None else committed == 0
            for p, (lag, committed) in last.items()
        )

    try:
        wait_for(lag_is_what_is_not_committed, 10, "the lag while paused")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; (lag, committed) per partition: {last}, produced: {landed}") from None
    time.sleep(1.0)  # paused for good: nothing more is taken while refused
    assert total(scrape(metrics), "mdstack_kafka_messages_total", topic=topic) == held

    stack.start("flusher", health=True)
    wait_for(lambda: len(rows(kafka_settings, TRADE)) == 300, 60, "the backlog drained into Postgres")
    stored = rows(kafka_settings, TRADE)
    assert stored == dict.fromkeys((v["event_id"] for v in values), 1)
    samples = scrape(metrics)
    assert total(samples, "mdstack_kafka_paused", topic=topic) == 0
    assert total(samples, "mdstack_kafka_pauses_total", topic=topic) >= 1
    assert total(samples, "mdstack_kafka_retries_total", topic=topic, reason="Behind") >= 1
    assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="accepted") == 300
    assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="duplicate") == 0


def test_bad_messages_go_to_the_dead_letter_topic_with_the_error_and_the_rest_goes_on(
    stack: Stack, kafka_settings: Settings
) -> None:
    good = [event(ERROR, n=n) for n in range(6)]
    missing = event(ERROR, n=50)
    del missing["error_type"]
    produce(kafka_settings, ERROR, [good[0], b"{not json", good[1], missing, b"[1, 2]", *good[2:]])
    start_backend(stack)
    wait_for(lambda: len(rows(kafka_settings, ERROR)) == 6, 60, "the good messages in Postgres")
    assert set(rows(kafka_settings, ERROR)) == {v["event_id"] for v in good}

    letters = read_topic(kafka_settings, kafka_settings.KAFKA_DEAD_LETTER_TOPIC, 3)
    by_value = {m.value(): dict(m.headers()) for m in letters}
    assert set(by_value) == {b"{not json", orjson.dumps(missing), b"[1, 2]"}
    assert by_value[b"{not json"]["reason"] == b"json"
    assert by_value[orjson.dumps(missing)]["reason"] == b"invalid"
    assert [e["field"] for e in orjson.loads(by_value[orjson.dumps(missing)]["error"])] == ["error_type"]
    assert orjson.loads(by_value[b"[1, 2]"]["error"]) == [{"field": "body", "message": "must be an object"}]
    for headers in by_value.values():
        assert headers["source.topic"] == kafka_settings.KAFKA_TOPIC_ERROR.encode()

    topic = kafka_settings.KAFKA_TOPIC_ERROR
    samples = scrape(stack.health["kafka"])
    assert total(samples, "mdstack_kafka_dead_letters_total", topic=topic, reason="json") == 1
    assert total(samples, "mdstack_kafka_dead_letters_total", topic=topic, reason="invalid") == 2
    assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="dead_lettered") == 3
    assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="accepted") == 6
    wait_for(lambda: total(scrape(stack.health["kafka"]), "mdstack_kafka_consumer_lag") == 0, 15, "no lag")


def test_the_consumers_lag_goes_into_rttm_as_queue_metrics_of_its_own(stack: Stack, kafka_settings: Settings) -> None:
    """The pipeline view's depth panel reads queue metrics: the consumer reports its own lag as such, per
    partition (service `kafka-consumer`), beside the lag the trade services report."""
    stack.env.update(KAFKA_LAG_REPORT_S="0.5")
    produce(kafka_settings, TRADE, [event(TRADE, n=n) for n in range(30)])
    start_backend(stack)
    wait_for(lambda: len(rows(kafka_settings, TRADE)) == 30, 60, "the trade events stored")

    def reports() -> list[tuple[int, int, int]]:
        with psycopg.connect(kafka_settings.pg_dsn) as conn:
            query = (
                "SELECT DISTINCT ON (partition) partition, produced_offset, consumed_offset FROM rttm_queue_metrics"
                " WHERE service_name = 'kafka-consumer' AND topic_name = %s ORDER BY partition, snapshot_time DESC"
            )
            return conn.execute(query, (kafka_settings.KAFKA_TOPIC_TRADE,)).fetchall()

    # Caught up: each partition's latest report has consumed = produced, and the produced offsets add up to 30.
    wait_for(lambda: sum(r[1] for r in reports()) == 30 and all(r[1] == r[2] for r in reports()), 30, "lag reports")
    assert {r[0] for r in reports()} <= set(range(PARTITIONS))


def test_readiness_needs_the_broker(stack: Stack, kafka_settings: Settings, broker_server: EmbeddedKafka) -> None:
    start_backend(stack, flusher=False)
    url = stack.health["kafka"]
    assert http().get(f"{url}/health/readiness", timeout=5).status_code == 200

    broker_server.stop()

    def not_ready() -> bool:
        answer = http().get(f"{url}/health/readiness", timeout=10)
        return answer.status_code == 503 and any(p.startswith("kafka") for p in answer.json()["problems"])

    wait_for(not_ready, 30, "readiness to report the broker gone")
    assert http().get(f"{url}/health/liveness", timeout=5).status_code == 200  # alive: it waits for the broker
