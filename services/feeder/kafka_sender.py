"""`--transport kafka`: the feeder's ticks and trade-pipeline events to the Kafka topics instead of the API.

Each item is one message, keyed as seed 001 says (`kafka.message_key`: trade events and DLQ entries by
trade_id, queue metrics by topic + partition, errors and logs by service_name, ticks by symbol), its value
the very JSON the API would have been posted. The producer is idempotent with acks=all, so its own retries
neither lose nor double a message; an item counts as acknowledged once the broker confirmed it, which here
means "in the topic" (the consumer takes it from there, services/kafka_consumer). Ticks need
KAFKA_TOPIC_TICKS.

`KafkaSender.deliver` is `sender.Sender.deliver`'s counterpart, so the schedulers do not know which one
they feed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson

from services.common import kafka
from services.common.kinds import KINDS, TICK, Kind
from services.common.logging import get_logger
from services.common.settings import Settings
from services.feeder.stats import FeederStats

log = get_logger(__name__)
POLL_S = 0.05  # delivery reports are served this often (the producer's own thread batches the sends)
FLUSH_S = 10.0  # at the end of a run, what is still queued gets this long to reach the broker


class KafkaTransport:
    """One producer for the whole run, with a thread serving its delivery reports."""

    def __init__(self, settings: Settings) -> None:
        self.topics = kafka.topics(settings)
        if TICK not in self.topics:
            raise SystemExit("mdstack feeder: --transport kafka sends ticks to KAFKA_TOPIC_TICKS; set it (md.ticks)")
        self.producer = kafka.producer(settings, **{"linger.ms": 5})
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-deliveries", daemon=True)
        self._poller.start()
        self.logged: set[str] = set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(POLL_S)

    def sender(self, kind: str, stats: FeederStats) -> KafkaSender:
        return KafkaSender(self, KINDS[kind], stats)

    async def close(self) -> None:
        left = await asyncio.to_thread(self.producer.flush, FLUSH_S)
        self._stop.set()
        self._poller.join()
        if left:
            log.error("feeder.kafka_undelivered", messages=left)


class KafkaSender:
    def __init__(self, transport: KafkaTransport, kind: Kind, stats: FeederStats) -> None:
        self.transport = transport
        self.kind = kind
        self.topic = transport.topics[kind]
        self.stats = stats

    async def deliver(
        self, items: list[dict[str, Any]], scheduled: float, path: str | None = None
    ) -> list[dict[str, Any]]:
        """Produce `items` and wait for the broker's word on each; returns those it took."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[str | None]] = []
        self.stats.attempts += 1
        for item in items:
            future: asyncio.Future[str | None] = loop.create_future()

            def report(err: Any, _msg: Any, future: asyncio.Future[str | None] = future) -> None:
                loop.call_soon_threadsafe(_settle, future, None if err is None else err.name())

            try:
                self.transport.producer.produce(
                    self.topic, key=kafka.message_key(self.kind, item), value=orjson.dumps(item), on_delivery=report
                )
            except BufferError:  # the producer's queue is full: the broker is slower than the schedule
                future.set_result("queue_full")
            except Exception as exc:  # any other refusal counts against the item, not the run
                future.set_result(type(exc).__name__)
            futures.append(future)
        causes = await asyncio.gather(*futures)
        acked = [item for item, cause in zip(items, causes, strict=True) if cause is None]
        if acked:
            self.stats.record_ack(accepted=len(acked), duplicates=0, rejected=0, latency_s=time.monotonic() - scheduled)
        for cause in {c for c in causes if c is not None}:
            self.stats.record_error(f"kafka_{cause}", causes.count(cause))
            if cause not in self.transport.logged:
                self.transport.logged.add(cause)
                log.error("feeder.kafka_refused", topic=self.topic, cause=cause, note="logged once per cause")
        return acked


def _settle(future: asyncio.Future[str | None], cause: str | None) -> None:
    if not future.done():
        future.set_result(cause)
