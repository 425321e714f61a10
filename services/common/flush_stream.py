"""The flush stream: every row bound for Postgres, one entry per committed batch.

Fields of an entry: `batch` (the batch id, which is also the trace id the workers log), `items` (JSON
`{kind: [row, ...]}`, rows as `kinds.Kind.columns`) and `n` (how many of them the backlog count holds).

Two producers, and only these:
- the API's group commit (`orchestrator_api/ingest/ingest.lua`, in the transaction that accepts the items):
  ticks and RTTM events a client sent, `n` = the items accepted;
- the alert evaluator (`consumers/rttm/alerts.py`, through `append`): alert transitions, `n` = 0, since alerts
  are not client items and the backlog count (`keys.backlog`) never held them.
One consumer: the flusher (`services/flusher/writer.py`, group `keys.FLUSH_GROUP`), which acknowledges and
deletes an entry once its rows are committed (`flusher/flush_ack.lua`).
"""

from __future__ import annotations

from typing import Any

import orjson

BATCH, ITEMS, COUNT = b"batch", b"items", b"n"


def append(pipe: Any, stream: str, batch_id: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Queue an entry of rows that the backlog count does not hold (the alert evaluator's) on a pipeline."""
    pipe.xadd(stream, {BATCH: batch_id, ITEMS: orjson.dumps(rows), COUNT: 0})


def item_count(fields: dict[bytes, bytes]) -> int:
    """The items an entry adds to the backlog count; 0 for an entry without a readable count."""
    try:
        return int(fields.get(COUNT, 0))
    except ValueError:
        return 0
