"""The flusher: accepted items from the Redis flush stream into Postgres, in batches.

Each ingest group commit adds one entry to the stream, its items grouped by
kind (ticks into `md_ticks`, RTTM events into their `rttm_*` tables). The
flusher reads entries through a consumer group, writes all their items in ONE
Postgres transaction (per kind: COPY into a temp table, then INSERT ... ON
CONFLICT on the kind's unique key DO NOTHING, skipping keys any partition
already holds: see KindSQL), and only after COMMIT acknowledges and deletes
the entries.
Killed before the commit: the entries stay pending and are read again (by
this consumer name at start-up, or claimed by another flusher once idle).
Killed after the commit but before the ack: they are written again and the
conflict clause skips them. Nothing is lost, nothing is duplicated.

A batch closes once it holds FLUSH_MAX_ROWS items (whole entries: an entry
is never split) or after FLUSH_INTERVAL_MS, whichever comes first; within
that time it reads every GATHER_MS once it holds an entry, not on every
commit (at 100 single-tick POSTs/s a wake-up per commit was most of its CPU). After a
round that found nothing, the flusher waits for the first entry in one
blocking read of up to IDLE_WAIT_MS rather than a read per FLUSH_INTERVAL_MS,
and writes what that read brings at once: an idle stack costs a wake-up a
second, and the first tick after a quiet spell reaches Postgres sooner. First
SIGTERM finishes the current batch; a second exits at once.

What goes wrong, and what the flusher does (it raises nothing of its own):

    UnreadableEntry           an entry that holds no rows it can write: a dead letter of its own, acknowledged
    psycopg.Error
    ├── poison (is_poison)    the rows' fault (22xxx, 23xxx, 54000): retried FLUSH_POISON_ATTEMPTS times, then
    │                         bisected down to the rows that fail, which become dead letters (dead_letter.py)
    └── any other             Postgres away or broken: retried with back-off forever, the entries kept
    redis.RedisError          Redis away: reads and acks are retried; rows written twice are skipped
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import psycopg
import redis
from sqlalchemy.dialects import postgresql

from services.common import flush_stream
from services.common.db import partition_key
from services.common.keys import FLUSH_GROUP, Keys
from services.common.kinds import KINDS, TICK, Kind
from services.common.logging import get_logger
from services.common.scripts import register
from services.common.settings import Settings
from services.flusher import candle_store, dead_letter, metrics
from services.flusher.dead_letter import DeadLetter
from services.flusher.defaults import BACKOFF_MAX_S, CLAIM_EVERY_S, GATHER_MS, IDLE_WAIT_MS, READ_COUNT

log = get_logger(__name__)


@dataclass(frozen=True)
class KindSQL:
    """COPY into a session temp table, then INSERT the rows whose key the kind's table does not hold yet.

    A table partitioned by day can only be unique on (key, partition key): that catches every
    replay (a re-written flush entry, a client's retry: same key, same time) in the conflict
    clause. A key reused with another time is caught by ingest's window (DEDUP_WINDOW_S), which
    de-duplicates by the key alone; a probe of every partition for it would cost one index lookup
    per partition and row, about 5x the whole insert (doc/storage-and-db.md has the figures).
    DISTINCT ON keeps one row per key within the batch: the first accepted (lowest received_at).
    """

    ddl: str
    copy: str
    insert: str

    @classmethod
    def of(cls, kind: Kind) -> KindSQL:
        table, stage = kind.table.name, f"stage_{kind.table.name}"
        columns = [kind.table.c[name] for name in kind.columns]
        names = ", ".join(f'"{c.name}"' for c in columns)
        typed = ", ".join(
            f'"{c.name}" {"float8" if c.name in kind.time_columns else c.type.compile(dialect=PG)}' for c in columns
        )
        picked = ", ".join(
            f'to_timestamp(s."{c.name}" / 1000.0)' if c.name in kind.time_columns else f's."{c.name}"' for c in columns
        )
        key, part = kind.conflict, partition_key(kind.table)
        if part is None:
            select = f'SELECT {picked} FROM {stage} s ON CONFLICT ("{key}") DO NOTHING'
        else:
            select = (
                f'SELECT DISTINCT ON (s."{key}") {picked} FROM {stage} s '
                f'ORDER BY s."{key}", s."received_at", s."{part}" '
                f'ON CONFLICT ("{key}", "{part}") DO NOTHING'
            )
        return cls(
            ddl=f"CREATE TEMP TABLE IF NOT EXISTS {stage} ({typed}) ON COMMIT DELETE ROWS",
            copy=f"COPY {stage} ({names}) FROM STDIN",
            insert=f"INSERT INTO {table} ({names}) {select}",
        )


PG = postgresql.dialect()
SQL = {name: KindSQL.of(kind) for name, kind in KINDS.items()}


@dataclass
class Batch:
    entry_ids: list[bytes] = field(default_factory=list)
    entry_items: list[int] = field(default_factory=list)  # per entry, the items it adds to the backlog count
    trace_ids: list[str] = field(default_factory=list)  # the ingest batch ids, as the workers log them
    rows: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)  # by kind
    unreadable: list[DeadLetter] = field(default_factory=list)  # entries that hold no rows we can write
    oldest_received_ms: float = float("inf")

    def add(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """Take in one stream entry, whole; an entry that cannot be read becomes a dead letter of its own."""
        self.entry_ids.append(entry_id)
        self.entry_items.append(flush_stream.item_count(fields))
        try:
            self.trace_ids.append(fields[flush_stream.BATCH].decode())
            parsed, oldest = _parse_items(fields[flush_stream.ITEMS])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:  # orjson's decode error is a ValueError
            raw = {k.decode(errors="backslashreplace"): v.decode(errors="backslashreplace") for k, v in fields.items()}
            reason = f"unreadable flush stream entry: {exc.args[0] if exc.args else type(exc).__name__}"
            self.unreadable.append(dead_letter.letter("entry", entry_id.decode(), raw, reason))
            return
        for name, rows in parsed.items():
            self.rows.setdefault(name, []).extend(rows)
        self.oldest_received_ms = min(self.oldest_received_ms, oldest)

    @property
    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def items(self) -> list[dead_letter.Item]:
        return [(name, row) for name, rows in self.rows.items() for row in rows]


class UnreadableEntry(ValueError):
    """A flush stream entry without `{kind: [record, ...]}` of known kinds (see flush_stream.py)."""


def _parse_items(items: bytes) -> tuple[dict[str, list[tuple[object, ...]]], float]:
    """`{kind: [record, ...]}` as rows in each kind's column order, and the oldest `received_at`;
    raises on anything else."""
    out: dict[str, list[tuple[object, ...]]] = {}
    oldest = float("inf")
    decoded = orjson.loads(items)
    if not isinstance(decoded, dict):
        raise UnreadableEntry("items is not a JSON object of kinds")
    for name, records in decoded.items():
        if name not in KINDS:
            raise UnreadableEntry(f"unknown kind {name!r}")
        columns = KINDS[name].columns
        rows = out[name] = []
        for record in records:
            rows.append(tuple(record.get(c) for c in columns))
            received = record.get("received_at")
            if isinstance(received, int | float) and received < oldest:
                oldest = received
    return out, oldest


class Flusher:
    def __init__(self, settings: Settings, client: redis.Redis, name: str | None = None) -> None:
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.KEY_PREFIX)
        self.name = name or settings.FLUSHER_NAME or socket.gethostname()
        self.stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._own_pending_read = False
        self._last_claim = 0.0
        self.idle = False  # the last round found nothing to write
        self._ack = register(client, "flush_ack", __package__)

    # --- Redis side -------------------------------------------------------------

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.keys.flush_stream, FLUSH_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def collect(self, wait_ms: int = 0) -> Batch:
        """Entries for one batch: first what this consumer or a dead one left pending, then new ones.
        `wait_ms`: with none of those, one blocking read of up to that long, its entries the batch."""
        batch = Batch()
        stream = self.keys.flush_stream
        if not self._own_pending_read:
            # Delivered to this consumer name before a crash and never acknowledged.
            for _, entries in self.redis.xreadgroup(FLUSH_GROUP, self.name, {stream: "0"}, count=10_000) or []:
                for entry_id, fields in entries:
                    if fields:
                        batch.add(entry_id, fields)
            self._own_pending_read = True
        if time.monotonic() - self._last_claim > CLAIM_EVERY_S:
            self._last_claim = time.monotonic()
            _, claimed, *_ = self.redis.xautoclaim(
                stream, FLUSH_GROUP, self.name, self.settings.FLUSH_CLAIM_IDLE_MS, "0-0", count=READ_COUNT
            )
            for entry_id, fields in claimed:
                if fields:
                    batch.add(entry_id, fields)
            if claimed:
                log.warning("flusher.claimed", entries=len(claimed), consumer=self.name)
        if wait_ms and not batch.entry_ids:
            response = self.redis.xreadgroup(FLUSH_GROUP, self.name, {stream: ">"}, count=READ_COUNT, block=wait_ms)
            for _, entries in response or []:
                for entry_id, fields in entries:
                    batch.add(entry_id, fields)
            return batch
        deadline = time.monotonic() + self.settings.FLUSH_INTERVAL_MS / 1000.0
        more = False  # the last read took all it asked for: more is likely waiting
        while batch.size < self.settings.FLUSH_MAX_ROWS and not self.stop.is_set():
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            count = self._room(batch)
            if not batch.entry_ids:
                response = self.redis.xreadgroup(FLUSH_GROUP, self.name, {stream: ">"}, count=count, block=remaining_ms)
            else:
                # A batch to write already: with nothing more waiting, gather a while rather than wake for every
                # commit; otherwise read on.
                if not more and self.stop.wait(min(remaining_ms, GATHER_MS) / 1000.0):
                    break
                response = self.redis.xreadgroup(FLUSH_GROUP, self.name, {stream: ">"}, count=count)
            read = 0
            for _, entries in response or []:
                for entry_id, fields in entries:
                    batch.add(entry_id, fields)
                    read += 1
            more = read >= count
        return batch

    def _room(self, batch: Batch) -> int:
        """Entries to read next: one to start a batch (its size is not known before), then as many as
        FLUSH_MAX_ROWS leaves room for at the batch's rows per entry so far, at most READ_COUNT: a batch goes
        past its size by what one entry differs from the others at most."""
        if not batch.entry_ids:
            return 1
        per_entry = max(1, batch.size // len(batch.entry_ids))
        return max(1, min(READ_COUNT, (self.settings.FLUSH_MAX_ROWS - batch.size) // per_entry))

    def acknowledge(self, batch: Batch) -> None:
        args: list[object] = [FLUSH_GROUP]
        for entry_id, items in zip(batch.entry_ids, batch.entry_items, strict=True):
            args += (entry_id, items)
        self._ack(keys=[self.keys.flush_stream, self.keys.backlog], args=args)

    # --- Postgres side ----------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.settings.pg_dsn, connect_timeout=5)
            for sql in SQL.values():
                self._conn.execute(sql.ddl)
            self._conn.commit()
        return self._conn

    def write(self, batch: Batch) -> int:
        """All rows of every kind, and the batch's unreadable entries, in one transaction; returns how many
        rows were new."""
        return self._write_rows(batch.rows, batch.unreadable)

    def _write_rows(self, rows: dict[str, list[tuple[object, ...]]], letters: Sequence[DeadLetter] = ()) -> int:
        conn = self._connection()
        new: dict[str, int] = {}
        try:
            with conn.transaction(), conn.cursor() as cur:
                for name, kind_rows in rows.items():
                    with cur.copy(SQL[name].copy) as copy:
                        for row in kind_rows:
                            copy.write_row(row)
                    if name == TICK.name:  # new ticks are merged into md_candles by the same statement
                        cur.execute(candle_store.insert_ticks_with_candles(SQL[name].insert))
                        new[name] = cur.fetchone()[0]  # type: ignore[index]
                    else:
                        cur.execute(SQL[name].insert)
                        new[name] = cur.rowcount
                stored = dead_letter.store(cur, letters)
        except psycopg.Error as exc:
            if not dead_letter.is_poison(exc):  # the transaction rolled back; only then may the session be unusable
                conn.close()
            raise
        for name, count in new.items():  # counted once committed
            metrics.ROWS.labels(name, "inserted").inc(count)
            metrics.ROWS.labels(name, "duplicate").inc(len(rows[name]) - count)
        self._dead_lettered(letters, stored)
        return sum(new.values())

    def _write_items(self, items: list[dead_letter.Item]) -> int:
        rows: dict[str, list[tuple[object, ...]]] = {}
        for name, row in items:
            rows.setdefault(name, []).append(row)
        return self._write_rows(rows)

    def _isolate(self, batch: Batch, error: psycopg.Error) -> int:
        """Write what can be written, dead-letter each row that fails alone; returns the rows written."""
        log.warning("flusher.isolating", rows=batch.size, error=dead_letter.describe(error))
        inserted, poison = dead_letter.isolate(batch.items(), error, self._write_items)
        letters = list(batch.unreadable)
        for (name, row), exc in poison:
            kind = KINDS[name]
            record = dict(zip(kind.columns, row, strict=True))
            letters.append(dead_letter.letter(name, record.get(kind.conflict), record, exc))
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                stored = dead_letter.store(cur, letters)
        except psycopg.Error:
            conn.close()
            raise
        self._dead_lettered(letters, stored)
        return inserted

    @staticmethod
    def _dead_lettered(letters: Sequence[DeadLetter], stored: dict[str, int]) -> None:
        for item in letters:
            log.error("flusher.dead_lettered", kind=item.kind, event_key=item.event_key, error=item.error)
        for name, count in stored.items():  # only the new ones: a batch isolated again counts nothing twice
            metrics.DEAD_LETTERS.labels(name).inc(count)

    # --- loop -------------------------------------------------------------------

    def flush_once(self, wait_ms: int = 0) -> int:
        """Collect (`wait_ms`: see `collect`), write, commit, acknowledge one batch; returns rows written (new)."""
        batch = self.collect(wait_ms)
        self.idle = not batch.entry_ids
        if self.idle:
            return 0
        started = time.perf_counter()
        inserted = self._write_until_done(batch)
        self.acknowledge(batch)
        elapsed = time.perf_counter() - started
        metrics.BATCHES.inc()
        metrics.FLUSH_SECONDS.observe(elapsed)
        metrics.TICK_TO_DB.observe(max(0.0, time.time() - batch.oldest_received_ms / 1000.0))
        log.debug(
            "flusher.flushed",
            rows=batch.size,
            inserted=inserted,
            trace_ids=batch.trace_ids[:20],
            ms=round(elapsed * 1000, 1),
        )
        return inserted

    def _write_until_done(self, batch: Batch) -> int:
        """Postgres down: keep the batch (it is still pending in Redis) and retry with back-off.
        Refused for its data FLUSH_POISON_ATTEMPTS times: dead-letter the rows at fault, write the rest.
        Asked to stop meanwhile: give up; the entries stay pending for the next start."""
        delay = 0.1
        attempts = max(1, self.settings.FLUSH_POISON_ATTEMPTS)
        refused = 0
        poison: psycopg.Error | None = None
        while True:
            try:
                if poison is not None and refused >= attempts:
                    return self._isolate(batch, poison)
                return self.write(batch)
            except psycopg.Error as exc:
                if dead_letter.is_poison(exc) and refused < attempts:
                    refused += 1
                    poison = exc
                isolate_now = poison is exc and refused >= attempts  # waiting will not change the data
                metrics.ERRORS.labels("postgres").inc()
                log.error(
                    "flusher.write_failed",
                    error=dead_letter.describe(exc),
                    rows=batch.size,
                    retry_in_s=0 if isolate_now else delay,
                    poison_attempts=refused,
                )
                if isolate_now:
                    continue
                if self.stop.wait(delay):
                    raise
                delay = min(delay * 2, BACKOFF_MAX_S)

    def run(self) -> None:
        self.ensure_group()
        log.info("flusher.started", consumer=self.name, stream=self.keys.flush_stream)
        delay = 0.1
        while not self.stop.is_set():
            try:
                self.flush_once(IDLE_WAIT_MS if self.idle else 0)
                delay = 0.1
            except redis.RedisError as exc:
                metrics.ERRORS.labels("redis").inc()
                log.error("flusher.redis_failed", error=str(exc), retry_in_s=delay)
                if "NOGROUP" in str(exc):  # Redis came back without its data: make the group again
                    self._ensure_group_quietly()
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                self._own_pending_read = False  # re-read what we hold once Redis is back
            except psycopg.Error:
                log.warning("flusher.batch_left_pending", reason="stopping while Postgres is unavailable")
        log.info("flusher.stopping", consumer=self.name)
        self.close()
        log.info("flusher.stopped", consumer=self.name)

    def _ensure_group_quietly(self) -> None:
        try:
            self.ensure_group()
        except redis.RedisError as exc:
            log.warning("flusher.group_not_created", error=str(exc))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: object) -> None:
            if self.stop.is_set():
                raise SystemExit(1)  # second signal: leave now, Redis still holds the batch
            self.stop.set()  # no logging here: see catch_stop in consumers/worker.py

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
