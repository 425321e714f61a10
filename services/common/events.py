"""Trade-pipeline (RTTM) events, field for field as in seed 001 section 2.

Each model knows its idempotency key: the `event_id` when the producer sent
one, else what identifies the event naturally (topic + partition + offset for
a consumed trade event, service + topic + partition + snapshot time for a
queue metric, a hash of the content otherwise), so a replay or a retry is
stored once. Times are epoch milliseconds in the stored record.

The two sources of keys cannot meet: a derived key starts with DERIVED, which
an `event_id` cannot start with (it starts with a letter or digit), so no
client can pick an id that suppresses another event as its duplicate. Its
parts are joined by SEP, which no name may contain, so two different events
never derive the same key either.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from services.common.schemas import EpochMs, EventId, json_integer

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]  # never contains SEP or starts with MARK
Code = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9_]{1,64}$")]  # event types, statuses, categories
TradeId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
# Free text: any printable characters (tabs and newlines allowed), bounded.
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", max_length=2000)]
# JSON Schema's integer: 2 and 2.0, not "2" or true (see JsonInt in schemas.py for why it is spelt this way).
Partition = Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(json_integer)]
Offset = Annotated[int, Field(ge=0, le=2**62), BeforeValidator(json_integer)]
LogLevel = Annotated[str, StringConstraints(pattern=r"^(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)$")]


DERIVED = "@"  # first character of every key mdstack derives (see schemas.EVENT_ID_PATTERN)
SEP = "|"  # between the parts of a derived key: not in Name, so the parts are read back one way only


def derived_key(kind: str, *parts: object) -> str:
    return DERIVED + SEP.join((kind, *(str(p) for p in parts)))


def kafka_key(topic: str, partition: int, offset: int) -> str:
    """The key of a message consumed from Kafka without an `event_id`: where it sits in the log (seed 001
    section 5), so a redelivery after a crash or a rebalance is a duplicate. Topic names have no SEP."""
    return derived_key("kafka", topic, partition, offset)


def content_key(kind: str, fields: dict[str, Any]) -> str:
    """A stable key from the content, for events sent without an id."""
    digest = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return derived_key(kind, digest)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    KIND: ClassVar[str] = "event"
    TIME_FIELD: ClassVar[str] = "event_time"

    event_id: EventId | None = Field(
        default=None, description="Idempotency key (starts with a letter or digit); derived from the content if absent"
    )

    def natural_key(self) -> str:
        fields = self.model_dump(exclude={"event_id"})
        return content_key(self.KIND, fields)

    def key(self) -> str:
        return self.event_id or self.natural_key()

    def record(self, received_at_ms: float) -> dict[str, Any]:
        out = self.model_dump()
        out[self.TIME_FIELD] = int(out[self.TIME_FIELD])
        out["event_key"] = self.key()
        out["received_at"] = received_at_ms
        return out


class TradeEventIn(_Event):
    """A step of a trade through the pipeline (`rttm.trade.events`)."""

    KIND: ClassVar[str] = "trade"
    trade_id: TradeId
    service_name: Name
    event_type: Code = Field(description="e.g. TRADE_CAPTURED, VALIDATION_SUCCESS, VALIDATION_FAILED")
    event_status: Code = Field(description="e.g. SUCCESS, FAILED")
    source_queue: Name | None = None
    target_queue: Name | None = None
    topic_name: Name | None = None
    partition: Partition | None = None
    offset: Offset | None = None
    event_time: EpochMs
    message: Text | None = None

    def natural_key(self) -> str:
        if self.topic_name is not None and self.partition is not None and self.offset is not None:
            return derived_key(self.KIND, self.topic_name, self.partition, self.offset, self.service_name)
        return super().natural_key()


class QueueMetricIn(_Event):
    """Produced vs consumed offset of one topic partition, as a consumer saw it (`rttm.queue.metrics`)."""

    KIND: ClassVar[str] = "queue"
    TIME_FIELD: ClassVar[str] = "snapshot_time"
    service_name: Name
    topic_name: Name
    partition: Partition
    produced_offset: Offset
    consumed_offset: Offset
    snapshot_time: EpochMs

    def natural_key(self) -> str:
        return derived_key(self.KIND, self.service_name, self.topic_name, self.partition, int(self.snapshot_time))


class DlqEventIn(_Event):
    """A trade routed to a dead-letter topic (`rttm.dlq.events`)."""

    KIND: ClassVar[str] = "dlq"
    trade_id: TradeId
    service_name: Name
    topic_name: Name
    reason: Text
    event_time: EpochMs


class ErrorEventIn(_Event):
    """A failure while processing a trade (`rttm.error.events`)."""

    KIND: ClassVar[str] = "error"
    trade_id: TradeId | None = None
    service_name: Name
    error_type: Code
    error_message: Text
    event_time: EpochMs


class LogEventIn(_Event):
    """A parsed log line (`rttm.log.events`)."""

    KIND: ClassVar[str] = "log"
    service_name: Name
    log_level: LogLevel
    log_category: Code
    trade_id: TradeId | None = None
    message: Text
    event_time: EpochMs
