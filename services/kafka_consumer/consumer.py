"""One topic in its consumer group: consume a batch, decode it, store it through the group commit, then commit
its offsets.

    consume -> decode -> dead letters produced -> admit + submit (GroupCommitter) -> dead letters flushed
            -> offsets committed (one past the last message of each partition)

The offsets move only after the Redis transaction holding the batch has returned, so a crash anywhere before
loses nothing: the group's next consumer reads the batch again, and the idempotency keys (the `event_id`, or
`events.kafka_key`) make the second delivery a duplicate, stored once.

Back-pressure: when the stack refuses (the committer's Saturated / Behind, the same bounds that make the API
answer 429/503, or Redis is away), the consumer pauses its partitions, keeps the batch, and offers it again
after Retry-After; when it is taken, the partitions resume. Nothing is skipped: the batch is the same one,
and consumption does not move past it. While paused it still polls, so the group keeps it as a member.

Rebalances: partitions revoked while a batch waits are dropped from it (their next owner reads them from the
committed offset); an offset commit the broker refuses after a rebalance is counted and left to that owner.

Every call into librdkafka runs on this consumer's own thread; rebalance callbacks run there too, inside
`consume`, while the asyncio task waits for it, so they and the task never touch the batch at once.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis

from services.common.kinds import QUEUE, TICK, Kind
from services.common.logging import get_logger
from services.common.settings import Settings
from services.kafka_consumer import metrics
from services.kafka_consumer.dead_letter import DeadLetters, Undelivered
from services.kafka_consumer.decode import Batch, DeadLetter, decode
from services.kafka_consumer.defaults import (
    BACKOFF_MAX_S,
    BACKOFF_MIN_S,
    DEAD_LETTER_FLUSH_S,
    LAG_EVERY_S,
    LAG_SERVICE,
    POLL_S,
)
from services.orchestrator_api import errors
from services.orchestrator_api.ingest.commit import GroupCommitter
from services.orchestrator_api.ingest.items import REFUSED, account, validate

log = get_logger(__name__)
T = TypeVar("T")
# What makes a batch wait and come again rather than fail: the stack's refusals and a Redis that is away.
RETRIED = (errors.Saturated, errors.Unavailable, redis.RedisError)


def retry_after(exc: Exception) -> float:
    value = exc.headers.get("Retry-After") if isinstance(exc, errors.ApiError) else None
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, BACKOFF_MIN_S), BACKOFF_MAX_S)


class TopicConsumer:
    def __init__(
        self,
        settings: Settings,
        kind: Kind,
        topic: str,
        consumer: Any,
        committer: GroupCommitter,
        dead_letters: DeadLetters,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.kind = kind
        self.topic = topic
        self.consumer = consumer
        self.committer = committer
        self.dead_letters = dead_letters
        self.stop = stop
        self.assigned: set[tuple[str, int]] = set()
        self.committed: dict[tuple[str, int], int] = {}
        self.paused = False
        self._held: Batch | None = None  # the batch in hand, pruned by revocations
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{kind.name}")
        self._lag_at = 0.0
        self._reported_at = 0.0

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, lambda: fn(*args, **kwargs))

    # -- rebalance callbacks (on this consumer's thread, inside consume) --------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        got = {(p.topic, p.partition) for p in partitions}
        self.assigned |= got
        metrics.REBALANCES.labels(self.topic, "assigned").inc(len(got))
        if self.paused:  # a partition that arrives during back-pressure waits with the others
            consumer.pause(partitions)
        log.info("kafka.assigned", topic=self.topic, partitions=sorted(p for _, p in got))

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        lost = {(p.topic, p.partition) for p in partitions}
        self.assigned -= lost
        metrics.REBALANCES.labels(self.topic, "revoked").inc(len(lost))
        dropped = self._held.drop_partitions(lost) if self._held is not None else 0
        for topic, partition in lost:
            self.committed.pop((topic, partition), None)
            for gauge in (metrics.LAG, metrics.COMMITTED):
                try:
                    gauge.remove(topic, str(partition))
                except KeyError:
                    pass
        log.info("kafka.revoked", topic=self.topic, partitions=sorted(p for _, p in lost), dropped=dropped)

    # -- the loop --------------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self._call(
            self.consumer.subscribe,
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("kafka.subscribed", topic=self.topic, kind=self.kind.name)
        try:
            while not self.stop.is_set():
                messages = await self._poll(POLL_S)
                if messages:
                    await self._handle(decode(self.settings, self.kind, messages))
                await self._report_lag()
        finally:
            await self._call(self._close)
            self._thread.shutdown(wait=False)
            log.info("kafka.closed", topic=self.topic)

    def _close(self) -> None:
        # Leaves the group at once (its partitions go to the others now, not after the session timeout). The
        # handle goes too, here: librdkafka's destroy takes ~0.5 s (it joins its threads), on each topic's own
        # thread they overlap instead of adding up at the interpreter's exit.
        self.consumer.close()
        self.consumer = None

    async def _poll(self, timeout_s: float) -> list[Any]:
        messages = await self._call(self.consumer.consume, self.settings.KAFKA_BATCH, timeout_s)
        good = []
        for message in messages:
            if (error := message.error()) is not None:
                if error.fatal():
                    raise RuntimeError(f"kafka consumer of {self.topic}: {error}")
                log.warning("kafka.consume_error", topic=self.topic, error=str(error))
                continue
            good.append(message)
        return good

    async def _handle(self, batch: Batch) -> None:
        self._held = batch
        try:
            for letter in batch.dead:
                self.dead_letters.send(letter)
            flags = await self._store(batch)
            if flags is None:  # stopping while refused: nothing committed, the group reads it again
                return
            refused = [DeadLetter(m, "symbol_cap", [_symbol_cap(self.settings)]) for (m, _), f in flags if f == REFUSED]
            for letter in refused:
                self.dead_letters.send(letter)
            await self._flush_dead_letters()
            self._count(batch, flags, len(refused))
            await self._commit(batch)
        finally:
            self._held = None
            if self.paused:
                await self._call(self.consumer.resume, await self._call(self.consumer.assignment))
                self.paused = False
                metrics.PAUSED.labels(self.topic).set(0)
                log.info("kafka.resumed", topic=self.topic)

    async def _store(self, batch: Batch) -> list[tuple[tuple[Any, Any], int]] | None:
        """Hand the batch to the group commit; wait, paused, while the stack refuses it. Returns per item its
        flag (1 accepted, 0 duplicate, REFUSED), or None when a stop came first."""
        while True:
            items = list(batch.items)
            if not items:
                return []
            try:
                self.committer.admit(len(items))
                # A tick of a new symbol past MAX_SYMBOLS refuses its whole request: one request per tick, so
                # only that one is refused. The committer still writes them all in one transaction.
                if self.kind is TICK:
                    answers = await asyncio.gather(*(self.committer.submit([item]) for _, item in items))
                    flags = [answer[0] for answer in answers]
                else:
                    flags = await self.committer.submit([item for _, item in items])
                return list(zip(items, flags, strict=True))
            except RETRIED as exc:
                reason = type(exc).__name__
                metrics.RETRIES.labels(self.topic, reason).inc()
                if not self.paused:
                    await self._pause(reason, str(exc))
                if not await self._wait(retry_after(exc), batch):
                    return None

    async def _pause(self, reason: str, detail: str) -> None:
        await self._call(self.consumer.pause, await self._call(self.consumer.assignment))
        self.paused = True
        metrics.PAUSED.labels(self.topic).set(1)
        metrics.PAUSES.labels(self.topic).inc()
        log.warning("kafka.paused", topic=self.topic, reason=reason, detail=detail[:300])

    async def _wait(self, seconds: float, batch: Batch) -> bool:
        """Poll (paused) for `seconds`, keeping the group membership; False when a stop came."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.is_set():
                return False
            # Paused partitions fetch nothing; a message fetched just before the pause still comes, in order.
            more = await self._poll(min(left, POLL_S))
            if more:
                extra = decode(self.settings, self.kind, more)
                for letter in extra.dead:
                    self.dead_letters.send(letter)
                batch.extend(extra)
            await self._report_lag()  # the lag grows while paused: that is what an operator watches
        return not self.stop.is_set()

    async def _flush_dead_letters(self) -> None:
        while True:
            try:
                await self._call(self.dead_letters.flush, DEAD_LETTER_FLUSH_S)
                return
            except Undelivered as exc:  # the broker is away: the offsets wait for the letters
                log.error("kafka.dead_letters_undelivered", topic=self.topic, error=str(exc))
                if self.stop.is_set():
                    raise

    def _count(self, batch: Batch, flags: list[tuple[tuple[Any, Any], int]], refused: int) -> None:
        stored = [(item, flag) for (_, item), flag in flags if flag != REFUSED]
        accepted = account(self.kind, [key for (_, key, _), _ in stored], [flag for _, flag in stored])
        metrics.MESSAGES.labels(self.topic, "accepted").inc(accepted)
        metrics.MESSAGES.labels(self.topic, "duplicate").inc(len(stored) - accepted)
        metrics.MESSAGES.labels(self.topic, "dead_lettered").inc(len(batch.dead) + refused)

    async def _commit(self, batch: Batch) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = {tp: offset for tp, offset in batch.next_offsets().items() if tp in self.assigned}
        if not offsets:
            return
        try:
            await self._call(
                self.consumer.commit,
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            metrics.COMMIT_FAILURES.labels(self.topic).inc()
            log.warning("kafka.commit_refused", topic=self.topic, error=str(exc.args[0]))
            return
        self.committed.update(offsets)
        for (topic, partition), offset in offsets.items():
            metrics.COMMITTED.labels(topic, str(partition)).set(offset)

    async def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < LAG_EVERY_S:
            return
        self._lag_at = now
        offsets = await self._call(self._read_offsets)
        for (topic, partition), (high, committed) in offsets.items():
            metrics.LAG.labels(topic, str(partition)).set(max(high - committed, 0))
        every = self.settings.KAFKA_LAG_REPORT_S
        if offsets and every > 0 and now - self._reported_at >= every:
            self._reported_at = now
            await self._report_queue_metrics(offsets)

    async def _report_queue_metrics(self, offsets: dict[tuple[str, int], tuple[int, int]]) -> None:
        """The lag as `rttm.queue.metrics` events of LAG_SERVICE, through the same group commit: the pipeline
        view shows this consumer's lag beside the one the trade services report. Skipped while refused."""
        now_ms = int(time.time() * 1000)
        records = [
            {"service_name": LAG_SERVICE, "topic_name": topic, "partition": partition, "produced_offset": high,
             "consumed_offset": min(committed, high), "snapshot_time": now_ms}
            for (topic, partition), (high, committed) in sorted(offsets.items())
        ]  # fmt: skip
        good, _ = validate(self.settings, QUEUE, records)
        try:
            self.committer.admit(len(good))
            flags = await self.committer.submit([(QUEUE, key, record) for key, record in good])
        except RETRIED as exc:  # the next report carries the figures again
            log.info("kafka.lag_report_skipped", topic=self.topic, reason=type(exc).__name__)
            return
        account(QUEUE, [key for key, _ in good], flags)

    def _read_offsets(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(high watermark as the last fetch saw it, committed offset) per assigned partition.

        The cached watermark costs no round trip; before a partition's first fetch it is unknown (skipped)."""
        from confluent_kafka import TopicPartition

        out = {}
        for topic, partition in self.assigned:
            watermarks = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            if not watermarks or watermarks[1] < 0:
                continue
            high = watermarks[1]
            committed = self.committed.get((topic, partition))
            if committed is None:
                [tp] = self.consumer.committed([TopicPartition(topic, partition)], timeout=2)
                committed = max(tp.offset, 0)
                self.committed[(topic, partition)] = committed
            out[(topic, partition)] = (high, committed)
        return out


def _symbol_cap(settings: Settings) -> dict[str, str]:
    return {
        "field": "symbol",
        "message": f"MAX_SYMBOLS={settings.MAX_SYMBOLS} symbols are known already, so no new symbol is taken",
    }
