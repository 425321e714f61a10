"""The dead-letter topic (seed 004's `metrics-dead-letter`; here KAFKA_DEAD_LETTER_TOPIC): a message that cannot be
stored goes there as it came (same key, same value bytes) with why in its headers, and consumption goes on.

Headers: `error` (JSON: [{field, message}]), `reason` (json | invalid | symbol_cap), and where it came from
(`source.topic`, `source.partition`, `source.offset`). Letters are produced as the batch is decoded and
flushed before its offsets are committed, so a crash in between sends a letter twice, never loses one.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.kafka_consumer import metrics
from services.kafka_consumer.decode import DeadLetter


class Undelivered(Exception):
    """Dead letters the broker did not take: the batch's offsets must not be committed."""


class DeadLetters:
    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._failed: list[str] = []

    def send(self, letter: DeadLetter) -> None:
        message = letter.message
        headers = [
            ("error", orjson.dumps(letter.error)),
            ("reason", letter.reason.encode()),
            ("source.topic", message.topic().encode()),
            ("source.partition", str(message.partition()).encode()),
            ("source.offset", str(message.offset()).encode()),
        ]

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                self._failed.append(str(err))
                return
            metrics.DEAD_LETTERS.labels(message.topic(), letter.reason).inc()

        self.producer.produce(
            self.topic, key=message.key(), value=message.value(), headers=headers, on_delivery=delivered
        )
        self.producer.poll(0)  # serve delivery reports of earlier letters

    def flush(self, timeout_s: float) -> None:
        """Wait until every letter sent so far is in the broker; raise Undelivered otherwise."""
        left = self.producer.flush(timeout_s)
        failed, self._failed = self._failed, []
        if left or failed:
            raise Undelivered(f"{left} dead letters still queued, {len(failed)} refused: {failed[:3]}")
