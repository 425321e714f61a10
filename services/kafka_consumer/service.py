"""The consumer process: one `TopicConsumer` per topic (each in its seed 001 group), all handing their batches
to one in-process `GroupCommitter`, the API's own, so de-duplication, the tables and the metrics are those of
an HTTP ingest.

Stopping: the first SIGTERM/SIGINT lets each topic finish the batch in hand (stored and committed, or, while
refused, left to the group uncommitted) and leave its group; a second one exits at once. Nothing is lost
either way: offsets move only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from services.common import kafka
from services.common.logging import get_logger
from services.common.settings import Settings
from services.kafka_consumer.consumer import TopicConsumer
from services.kafka_consumer.dead_letter import DeadLetters
from services.orchestrator_api.ingest.commit import GroupCommitter

log = get_logger(__name__)


def consumer_config(settings: Settings, group: str) -> dict[str, Any]:
    return kafka.client_config(
        settings,
        **{
            "group.id": group,
            "enable.auto.commit": False,  # offsets move after the group commit, never on a timer
            "auto.offset.reset": "earliest",  # a new group starts at the oldest message the broker keeps
            "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_MS,
            "max.poll.interval.ms": settings.KAFKA_MAX_POLL_INTERVAL_MS,
        },
    )


class KafkaIngest:
    def __init__(self, settings: Settings, client: Any) -> None:
        from confluent_kafka import Consumer

        self.settings = settings
        self.client = client
        self.stop = asyncio.Event()
        self.committer = GroupCommitter(settings, client)
        self.producer = kafka.producer(settings)  # dead letters; also the broker check of readiness
        self.consumers = [
            TopicConsumer(
                settings,
                kind,
                topic,
                Consumer(consumer_config(settings, kafka.group(settings, kind))),
                self.committer,
                DeadLetters(self.producer, settings.KAFKA_DEAD_LETTER_TOPIC),
                self.stop,
            )
            for kind, topic in kafka.topics(settings).items()
        ]

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()

        def handle(sig: signal.Signals) -> None:
            if self.stop.is_set():
                log.warning("kafka_consumer.forced_stop", signal=sig.name)
                raise SystemExit(1)  # nothing uncommitted is lost: the group reads it again
            log.info("kafka_consumer.stopping", signal=sig.name)
            self.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handle, sig)

    async def run(self) -> None:
        await self.committer.start()
        tasks = [asyncio.create_task(c.run(), name=f"kafka-{c.topic}") for c in self.consumers]
        log.info("kafka_consumer.started", topics=[c.topic for c in self.consumers])
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.exception() is not None:
                    self.stop.set()  # one topic failing stops the process: a supervisor restarts it whole
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.committer.stop()
            self.producer.flush(5)
            log.info("kafka_consumer.stopped")
