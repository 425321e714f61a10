"""What the ingest path carries: ticks and the five RTTM event kinds, in one registry.

A kind names its request model, its table, the unique column that makes a
replay harmless, the columns that travel as epoch milliseconds (stored as
timestamptz), and the realtime envelope published per accepted item, if any.
The API's group commit, the batch a worker reads, the flush stream entry and
the flusher's COPY are all organised by kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import Table

from services.common import db
from services.common.events import DlqEventIn, ErrorEventIn, LogEventIn, QueueMetricIn, TradeEventIn
from services.common.schemas import TickIn

GENERATED = ("id", "inserted_at")  # filled in by Postgres


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[BaseModel]
    table: Table
    conflict: str
    time_columns: frozenset[str]
    envelope: str | None = None

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.table.columns if c.name not in GENERATED]


def _rttm(name: str, model: type[BaseModel], table: Table, time_column: str = "event_time") -> Kind:
    return Kind(name, model, table, "event_key", frozenset({time_column, "received_at"}))


TICK = Kind("tick", TickIn, db.md_ticks, "event_id", frozenset({"ts", "received_at"}), "tick.received")
TRADE = _rttm("trade", TradeEventIn, db.rttm_trade_events)
QUEUE = _rttm("queue", QueueMetricIn, db.rttm_queue_metrics, "snapshot_time")
DLQ = _rttm("dlq", DlqEventIn, db.rttm_dlq_events)
ERROR = _rttm("error", ErrorEventIn, db.rttm_error_events)
LOG = _rttm("log", LogEventIn, db.rttm_parsed_logs)
ALERT = _rttm("alert", BaseModel, db.rttm_alerts)  # written by the alert evaluator, never posted

KINDS: dict[str, Kind] = {k.name: k for k in (TICK, TRADE, QUEUE, DLQ, ERROR, LOG, ALERT)}
RTTM_POSTED = tuple(k.name for k in (TRADE, QUEUE, DLQ, ERROR, LOG))  # the RTTM kinds a client sends (not alerts)
