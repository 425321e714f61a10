"""Poison rows: what counts as one, how a batch is searched for them, and the table they go to.

A write that fails because of the data itself fails again however often it
is retried, and would hold every later batch behind it. Such an error is
"poison" (`is_poison`): the flusher retries the batch FLUSH_POISON_ATTEMPTS
times, then bisects it (`isolate`): each half is written in its own
transaction, a failing half is split again, and a single row that still
fails goes to `md_dead_letters` with its error. Everything else fails the
same way for every row and is not the rows' fault (connection lost,
Postgres down, disk full, a missing table before `mdstack migrate`): it is
retried with back-off forever and nothing is dead-lettered.

Dead letters are keyed by (kind, idempotency key) and written with ON
CONFLICT DO NOTHING, so a batch isolated twice (a crash before the ack)
stores and counts each one once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import psycopg

from services.common.settings import Settings
from services.flusher.aged_rows import delete_older
from services.flusher.defaults import MAX_KEY_CHARS

PROGRAM_LIMIT_EXCEEDED = "54000"  # e.g. a value too large for an index row: the data, not the server

Item = tuple[str, tuple[object, ...]]  # (kind, row) as the flusher COPYs it


@dataclass(frozen=True)
class DeadLetter:
    kind: str  # a kind of kinds.py, or "entry" for a flush stream entry that could not be read
    event_key: str  # the item's idempotency key (the stream entry id for an unreadable entry)
    record: str  # JSON text
    error: str


def is_poison(exc: psycopg.Error) -> bool:
    """True when the rows caused the failure: bad values (22xxx, or refused by psycopg before sending),
    constraints (23xxx), a value over a size limit; not for connection or server trouble."""
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return True
    if exc.sqlstate == PROGRAM_LIMIT_EXCEEDED:
        return True
    # psycopg refusing to adapt a value (a list where text goes) happens before anything reaches the server.
    return isinstance(exc, psycopg.ProgrammingError) and exc.sqlstate is None


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()}"


def safe_text(value: str) -> str:
    """Text Postgres accepts: NUL spelt as the JSON escape, anything unencodable as a backslash escape."""
    return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def letter(kind: str, event_key: object, record: object, exc: BaseException | str) -> DeadLetter:
    # JSON escapes NUL as \u0000, so the text stays storable; column names are str subclasses (quoted_name).
    body = orjson.dumps(record, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    error = exc if isinstance(exc, str) else describe(exc)
    return DeadLetter(kind, safe_text(str(event_key))[:MAX_KEY_CHARS], safe_text(body), safe_text(error))


def isolate(
    items: list[Item], error: psycopg.Error, write: Callable[[list[Item]], int]
) -> tuple[int, list[tuple[Item, psycopg.Error]]]:
    """Bisect `items`, which failed together with `error`: write halves, split the failing ones.

    `write` commits the items it is given in one transaction (and returns how many rows were new) or
    raises. Returns the rows written and each poison item with its own error. Any other error than
    poison propagates: the caller retries later, and halves already committed are then duplicates.
    """
    inserted = 0
    poison: list[tuple[Item, psycopg.Error]] = []
    failing: list[tuple[list[Item], psycopg.Error]] = [(items, error)]
    while failing:
        part, part_error = failing.pop()
        if len(part) == 1:
            poison.append((part[0], part_error))
            continue
        middle = len(part) // 2
        for half in (part[:middle], part[middle:]):
            try:
                inserted += write(half)
            except psycopg.Error as exc:
                if not is_poison(exc):
                    raise
                failing.append((half, exc))
    return inserted, poison


def store(cur: psycopg.Cursor, letters: Iterable[DeadLetter]) -> dict[str, int]:
    """Insert the dead letters not stored yet; returns how many were new, by kind."""
    new: dict[str, int] = {}
    for item in letters:
        cur.execute(
            "INSERT INTO md_dead_letters (kind, event_key, record, error) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (kind, event_key) DO NOTHING",
            (item.kind, item.event_key, item.record, item.error),
        )
        if cur.rowcount:
            new[item.kind] = new.get(item.kind, 0) + 1
    return new


def delete_expired_dead_letters(conn: psycopg.Connection, now: datetime, settings: Settings) -> int:
    """Delete dead letters older than DEAD_LETTER_RETENTION_DAYS; returns how many."""
    cutoff = now - timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    return delete_older(conn, "md_dead_letters", "failed_at", cutoff)
