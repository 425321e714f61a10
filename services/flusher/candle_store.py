"""Candles in Postgres: merged from the ticks a flush transaction newly inserted, deleted by age.

The tick INSERT ... ON CONFLICT DO NOTHING gets a RETURNING clause, so the
same statement knows which ticks are new; exactly those are folded into
`md_candles` (1m, 5m, 15m buckets aligned to UTC) with INSERT ... ON CONFLICT
DO UPDATE. A batch written again after a crash returns no new ticks and adds
nothing: candles are exactly once because ticks are. The merge follows
calc-a (`consumers/windows.lua`): open is the tick with the smallest (ts, event_id),
close the largest, event ids compared bytewise (collation "C"); high and low
are the extremes; volume and count add up. So the result does not depend on
how ticks were split into batches or in which order the batches committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from services.common.candles import INTERVALS_MS
from services.common.settings import Settings
from services.flusher.aged_rows import delete_older

EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"  # buckets are aligned to UTC, as calc-a aligns them
BASE_MS = min(INTERVALS_MS.values())  # ticks are grouped once into the finest buckets, which roll up to the rest
if any(ms % BASE_MS for ms in INTERVALS_MS.values()):
    raise RuntimeError(f"every candle interval must be a multiple of the finest ({BASE_MS} ms): {INTERVALS_MS}")
_INTERVALS = ", ".join(f"('{name}', {ms} * INTERVAL '1 millisecond')" for name, ms in INTERVALS_MS.items())


def _first(value: str, ts: str, event_id: str, order: str = "") -> str:
    """The value of the earliest (ts, event_id) in the group, or the latest with order="DESC"."""
    return f'(array_agg({value} ORDER BY {ts} {order}, {event_id} COLLATE "C" {order}))[1]'


_OPEN_WINS = "(EXCLUDED.open_ts, EXCLUDED.open_event_id) < (c.open_ts, c.open_event_id)"
_CLOSE_WINS = "(EXCLUDED.close_ts, EXCLUDED.close_event_id) > (c.close_ts, c.close_event_id)"

# `new` holds the ticks the statement inserted; `fine` their candles in the finest buckets (one sort of the
# ticks); the SELECT rolls those up into every interval (a handful of rows) and merges them.
MERGE = f"""
fine AS (
  SELECT symbol, date_bin({BASE_MS} * INTERVAL '1 millisecond', ts, {EPOCH}) AS b,
         {_first("price", "ts", "event_id")} AS open, min(ts) AS open_ts, {_first("event_id", "ts", "event_id")} AS oe,
         max(price) AS high, min(price) AS low,
         {_first("price", "ts", "event_id", "DESC")} AS close, max(ts) AS close_ts,
         {_first("event_id", "ts", "event_id", "DESC")} AS ce, sum(volume) AS volume, count(*) AS n
  FROM new GROUP BY 1, 2
),
merged AS (
  INSERT INTO md_candles AS c (symbol, "interval", bucket_start, open, open_ts, open_event_id,
                               high, low, close, close_ts, close_event_id, volume, count)
  SELECT f.symbol, iv.name, date_bin(iv.width, f.b, {EPOCH}),
         {_first("f.open", "f.open_ts", "f.oe")}, min(f.open_ts), {_first("f.oe", "f.open_ts", "f.oe")},
         max(f.high), min(f.low),
         {_first("f.close", "f.close_ts", "f.ce", "DESC")}, max(f.close_ts),
         {_first("f.ce", "f.close_ts", "f.ce", "DESC")},
         sum(f.volume), sum(f.n)
  FROM fine f CROSS JOIN (VALUES {_INTERVALS}) AS iv(name, width)
  GROUP BY 1, 2, 3
  ORDER BY 1, 2, 3
  ON CONFLICT (symbol, "interval", bucket_start) DO UPDATE SET
    open = CASE WHEN {_OPEN_WINS} THEN EXCLUDED.open ELSE c.open END,
    open_ts = CASE WHEN {_OPEN_WINS} THEN EXCLUDED.open_ts ELSE c.open_ts END,
    open_event_id = CASE WHEN {_OPEN_WINS} THEN EXCLUDED.open_event_id ELSE c.open_event_id END,
    high = GREATEST(c.high, EXCLUDED.high),
    low = LEAST(c.low, EXCLUDED.low),
    close = CASE WHEN {_CLOSE_WINS} THEN EXCLUDED.close ELSE c.close END,
    close_ts = CASE WHEN {_CLOSE_WINS} THEN EXCLUDED.close_ts ELSE c.close_ts END,
    close_event_id = CASE WHEN {_CLOSE_WINS} THEN EXCLUDED.close_event_id ELSE c.close_event_id END,
    volume = c.volume + EXCLUDED.volume,
    count = c.count + EXCLUDED.count
)"""


def insert_ticks_with_candles(insert_ticks: str) -> str:
    """The tick INSERT (one INSERT statement, without RETURNING) made to merge its new rows into md_candles.

    One statement returning one row: how many ticks were new. Rows are merged in key order, so two
    flushers merging the same candles lock them in the same order and cannot deadlock on them.
    """
    return (
        f"WITH new AS ({insert_ticks} RETURNING symbol, ts, price, volume, event_id), {MERGE} SELECT count(*) FROM new"
    )


def delete_expired_candles(conn: psycopg.Connection, now: datetime, settings: Settings) -> int:
    """Delete candles whose bucket started more than CANDLE_RETENTION_DAYS before `now`; returns how many."""
    cutoff = now - timedelta(days=settings.CANDLE_RETENTION_DAYS)
    return delete_older(conn, "md_candles", "bucket_start", cutoff)
