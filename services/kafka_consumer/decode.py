"""Kafka messages to ingest items, with the API's own validation (orchestrator_api/ingest/items.py).

A message's value is one JSON object of its topic's kind (seed 001 section 2). One without an `event_id`
is keyed by where it sits in the log (`events.kafka_key`): a client cannot name that key, and a redelivery
of the same message finds it taken. A value that is not JSON, not an object, or not valid becomes a dead
letter with the reasons, field by field, as the API would have answered them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from services.common.events import kafka_key
from services.common.kinds import Kind
from services.common.settings import Settings
from services.orchestrator_api.ingest.commit import Item
from services.orchestrator_api.ingest.items import validate

Message = Any  # confluent_kafka.Message


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    reason: str  # json | invalid | symbol_cap
    error: list[dict[str, Any]]  # [{field, message}]


@dataclass
class Batch:
    """What one consume call brought, decoded: items to store and letters for the dead-letter topic."""

    items: list[tuple[Message, Item]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    def extend(self, other: Batch) -> None:
        self.items += other.items
        self.dead += other.dead

    def drop_partitions(self, partitions: set[tuple[str, int]]) -> int:
        """Forget the messages of partitions this consumer lost: their next owner reads them again."""
        before = len(self.items) + len(self.dead)
        self.items = [(m, i) for m, i in self.items if (m.topic(), m.partition()) not in partitions]
        self.dead = [d for d in self.dead if (d.message.topic(), d.message.partition()) not in partitions]
        return before - len(self.items) - len(self.dead)

    def next_offsets(self) -> dict[tuple[str, int], int]:
        """Per partition, the offset to commit: one past the last message handled."""
        out: dict[tuple[str, int], int] = {}
        for message in [m for m, _ in self.items] + [d.message for d in self.dead]:
            tp = (message.topic(), message.partition())
            out[tp] = max(out.get(tp, 0), message.offset() + 1)
        return out


def decode(settings: Settings, kind: Kind, messages: list[Message]) -> Batch:
    batch = Batch()
    values: list[Any] = []
    parsed: list[Message] = []
    for message in messages:
        try:
            values.append(orjson.loads(message.value() or b""))
        except orjson.JSONDecodeError as exc:
            batch.dead.append(DeadLetter(message, "json", [{"field": "value", "message": f"not JSON: {exc}"}]))
            continue
        parsed.append(message)
    good, bad = validate(settings, kind, values)
    rejected = {item.index: item for item in bad}
    valid = iter(good)
    for index, message in enumerate(parsed):
        if index in rejected:
            errors = [e.model_dump() for e in rejected[index].errors]
            batch.dead.append(DeadLetter(message, "invalid", errors))
            continue
        key, record = next(valid)
        if record.get("event_id") is None:
            key = record["event_key"] = kafka_key(message.topic(), message.partition(), message.offset())
        batch.items.append((message, (kind, key, record)))
    return batch
