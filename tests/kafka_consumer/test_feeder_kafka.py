"""The simulation end to end through a broker: `mdstack feeder --transport kafka` produces ticks and the five
kinds of trade-pipeline events, keyed as seed 001 says; the consumer takes them into the stack; every message
the broker acknowledged is in Postgres once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from harness.stack import Stack, wait_ready
from services.common import kafka
from services.common.kinds import DLQ, ERROR, KINDS, LOG, QUEUE, TICK, TRADE
from services.common.settings import Settings
from tests.kafka_consumer.helpers import read_topic, rows, scrape, start_backend, total, wait_for

pytestmark = pytest.mark.e2e
TICKS_TOPIC = "md.ticks"


@pytest.fixture
def ticks_settings(kafka_settings: Settings) -> Settings:
    s = kafka_settings.model_copy(update={"KAFKA_TOPIC_TICKS": TICKS_TOPIC})
    kafka.ensure_topics(s, [TICKS_TOPIC], 3)
    return s


def test_the_feeder_through_kafka_lands_every_acknowledged_event_once(
    stack: Stack, ticks_settings: Settings, tmp_path: Path
) -> None:
    stack.env["KAFKA_TOPIC_TICKS"] = TICKS_TOPIC
    stack.start("api")  # the worker posts its tick views there
    wait_ready(stack.api_url, 30)
    start_backend(stack)
    acked_ids, acked_events, summary_file = tmp_path / "ids.txt", tmp_path / "events.txt", tmp_path / "summary.json"
    feeder = subprocess.run(
        [
            *(sys.executable, "-m", "services.feeder", "--transport", "kafka", "--duration", "3", "--seed", "5"),
            *("--tps", "20", "--trade-tps", "20", "--fail-rate", "0.1", "--error-rate", "0.1"),
            *("--quiet", "--acked-ids", str(acked_ids), "--acked-events", str(acked_events)),
            *("--summary-json", str(summary_file)),
        ],
        env=stack.env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert feeder.returncode == 0, feeder.stderr.decode()[-3000:]
    summary = orjson.loads(summary_file.read_text())
    assert summary["transport"] == "kafka"
    sent: dict[str, set[str]] = {k: set() for k in ("trade", "queue", "dlq", "error", "log")}
    for line in acked_events.read_text().splitlines():
        kind, event_id = line.split()
        sent[kind].add(event_id)
    sent["tick"] = set(acked_ids.read_text().split())
    assert all(sent[k] for k in sent), {k: len(v) for k, v in sent.items()}
    assert summary["acknowledged"] == len(sent["tick"]) == summary["sent"]

    def landed() -> bool:
        return all(len(rows(ticks_settings, KINDS[k])) == len(ids) for k, ids in sent.items())

    wait_for(landed, 60, "every acknowledged message in Postgres")
    for kind, ids in sent.items():
        stored = rows(ticks_settings, KINDS[kind])
        assert stored == dict.fromkeys(ids, 1), kind

    # Keys of seed 001 section 2.
    topics = kafka.topics(ticks_settings)
    for kind, field in ((TRADE, "trade_id"), (DLQ, "trade_id"), (ERROR, "service_name"), (LOG, "service_name")):
        for message in read_topic(ticks_settings, topics[kind], 5):
            assert message.key() == orjson.loads(message.value())[field].encode(), kind.name
    for message in read_topic(ticks_settings, topics[QUEUE], 5):
        value = orjson.loads(message.value())
        assert message.key() == f"{value['topic_name']}{value['partition']}".encode()
    for message in read_topic(ticks_settings, TICKS_TOPIC, 5):
        assert message.key() == orjson.loads(message.value())["symbol"].encode()

    metrics = stack.health["kafka"]
    wait_for(lambda: total(scrape(metrics), "mdstack_kafka_consumer_lag") == 0, 15, "no lag")
    samples = scrape(metrics)
    for kind, ids in sent.items():
        topic = topics[KINDS[kind]]
        assert total(samples, "mdstack_kafka_messages_total", topic=topic, outcome="accepted") == len(ids), kind
    assert total(samples, "mdstack_kafka_messages_total", topic=TICKS_TOPIC, outcome="accepted") == len(sent[TICK.name])
    report = {
        kind: {
            "produced": len(ids),
            "consumed": total(samples, "mdstack_kafka_messages_total", topic=topics[KINDS[kind]]),
            "persisted": len(rows(ticks_settings, KINDS[kind])),
        }
        for kind, ids in sent.items()
    }
    print(f"feeder through kafka: {report}")  # noqa: T201
