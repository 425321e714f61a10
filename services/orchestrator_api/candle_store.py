"""Candles in Postgres: merged from the ticks a flush transaction newly inserted, deleted by age.

The tick INSERT ... ON CONFLICT DO NOTHING gets a RETURNING clause, so the
same statement knows which ticks are new; exactly those are folded into
`md_candles` (1m, 5m, 15m buckets aligned to UTC) with INSERT ... ON CONFLICT
DO UPDATE. A batch written again after a crash returns no new ticks and adds
nothing: candles are exactly once because ticks are. The merge follows
calc-a (`calc_a.lua`): open is the tick with the smallest (ts, event_id),
close the largest, event ids compared bytewise (collation "C"); high and low
are the extremes; volume and count add up. So the result does not depend on
how ticks were split into batches or in which order the batches committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from services.common.keys import INTERVALS_MS
from services.common.settings import Settings
from services.orchestrator_api.aged_rows import delete_older

_INTERVALS = ", ".join(f"('{name}', {ms} * INTERVAL '1 millisecond')" for name, ms in INTERVALS_MS.items())
_FIRST = 'ORDER BY n.ts, n.event_id COLLATE "C"'
_LAST = 'ORDER BY n.ts DESC, n.event_id COLLATE "C" DESC'
_OPEN_WINS = "(EXCLUDED.open_ts, EXCLUDED.open_event_id) < (c.open_ts, c.open_event_id)"
_CLOSE_WINS = "(EXCLUDED.close_ts, EXCLUDED.close_event_id) > (c.close_ts, c.close_event_id)"

MERGE = f"""
INSERT INTO md_candles AS c (symbol, "interval", bucket_start, open, open_ts, open_event_id,
                             high, low, close, close_ts, close_event_id, volume, count)
SELECT n.symbol, iv.name, date_bin(iv.width, n.ts, TIMESTAMPTZ '1970-01-01 00:00:00+00'),
       (array_agg(n.price {_FIRST}))[1], min(n.ts), (array_agg(n.event_id {_FIRST}))[1],
       max(n.price), min(n.price),
       (array_agg(n.price {_LAST}))[1], max(n.ts), (array_agg(n.event_id {_LAST}))[1],
       sum(n.volume), count(*)
FROM new n CROSS JOIN (VALUES {_INTERVALS}) AS iv(name, width)
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
"""


def insert_ticks_with_candles(insert_ticks: str) -> str:
    """The tick INSERT (one INSERT statement, without RETURNING) made to merge its new rows into md_candles.

    One statement returning one row: how many ticks were new. Rows are merged in key order, so two
    flushers merging the same candles lock them in the same order and cannot deadlock on them.
    """
    return (
        f"WITH new AS ({insert_ticks} RETURNING symbol, ts, price, volume, event_id), "
        f"merged AS ({MERGE}) SELECT count(*) FROM new"
    )


def delete_expired_candles(conn: psycopg.Connection, now: datetime, settings: Settings) -> int:
    """Delete candles whose bucket started more than CANDLE_RETENTION_DAYS before `now`; returns how many."""
    cutoff = now - timedelta(days=settings.CANDLE_RETENTION_DAYS)
    return delete_older(conn, "md_candles", "bucket_start", cutoff)
