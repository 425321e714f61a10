"""The wire contract: every read answer of the API and every event of the stream, declared once.

Routes name these as `response_model`s, so /openapi.json describes each body; the stream's
events go into the same document as components plus an `x-sse-events` map (event type -> schema,
`with_stream_events`). frontend/src/api/schema.gen.ts is generated from that document
(deploy/tools/gen_types.py, `make types`); CI fails when it is stale (tests/contract).

They are TypedDicts, not BaseModels: the shapes workers build on their hot path (view W per job,
the RTTM snapshot each second) stay plain dicts with no construction cost, mypy checks them where
they are built, and pydantic validates and describes them like models. Fields are declared in wire
order: a validated dict keeps the declared order. Ingest acknowledgements and the error body are
BaseModels in schemas.py (`IngestResult`, `ErrorBody`), the request bodies there and in events.py.

The stream's envelope is `{"id", "type", "symbol"?, "data"}`; `schemas.envelope` builds it without
the id, and for speed commit.py (tick.received), publish.lua and `realtime.with_id` build bytes of
their own: tests/contract proves those bytes validate against the envelopes here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from fastapi import FastAPI
from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, with_config
from typing_extensions import TypedDict

from services.common.schemas import TickRecord

Interval = Literal["1m", "5m", "15m"]  # calc-a's candle intervals (candles.INTERVALS_MS holds their lengths)
StreamId = Annotated[str, StringConstraints(pattern=r"^\d{1,20}-\d{1,20}$")]  # a Redis stream entry id
STRICT = ConfigDict(extra="forbid")  # a key the code adds without declaring it here fails validation


# Health: every service's probes.


@with_config(STRICT)
class Liveness(TypedDict):
    status: Literal["alive"]


@with_config(STRICT)
class ReadinessBody(TypedDict):
    """GET /health/readiness: 200 ready or degraded (a part it serves is down), 503 unavailable."""

    status: Literal["ready", "degraded", "unavailable"]
    problems: NotRequired[list[str]]  # with unavailable
    degraded: NotRequired[list[str]]


# Market data: symbols, view W, history, candles.


@with_config(STRICT)
class SymbolSummary(TypedDict):
    symbol: str
    price: float | None  # null until the symbol's first view
    ts: int | None
    version: int | None
    tick_size: float  # the price step (TICK_SIZES): prices show its decimals and move by multiples of it


@with_config(STRICT)
class SymbolList(TypedDict):
    symbols: list[SymbolSummary]


@with_config(STRICT)
class Ohlcv(TypedDict):
    """Open, high, low and close by tick time, the volume and the number of ticks."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    count: int


@with_config(STRICT)
class Candle(Ohlcv):
    """OHLCV of one bucket; `t` its start in epoch ms (UTC-aligned)."""

    t: int


@with_config(STRICT)
class ViewTick(TypedDict):
    event_id: str
    price: float
    volume: float
    ts: int


@with_config(STRICT)
class View(TypedDict):
    """View W of a symbol (calc-a's windows merged with the batch by calc-b); times in epoch ms."""

    symbol: str
    version: int
    price: float
    volume: float
    ts: int
    event_id: str
    change: float | None  # vs the previous tick; null for the first
    change_pct: float | None
    change_1m: float | None  # vs the open of the current 1m candle
    change_1m_pct: float | None
    sma_10: float
    volume_1m: float
    vwap_1m: float | None  # null when volume_1m is 0
    high_1m: float | None
    low_1m: float | None
    trades_1m: int
    last_ticks: list[ViewTick]  # oldest first
    candles: dict[Interval, Candle | None]
    latency_ms: float
    computed_at: float


@with_config(STRICT)
class Session(TypedDict):
    """The UTC day of a symbol's latest tick: `start` its midnight (epoch ms), `open` the day's first price."""

    start: int
    open: float | None  # null when no candle of the day is held (the day's first tick is gone from Redis)


@with_config(STRICT)
class SymbolSnapshot(TypedDict):
    symbol: str
    tick_size: float  # its price step (TICK_SIZES): the dashboard shows its prices with these decimals
    view: View | None  # null until the symbol's first view
    session: Session | None  # null with the view


@with_config(STRICT)
class Snapshot(TypedDict):
    """GET /symbols/views: every known symbol's latest view in one answer, for a dashboard's start."""

    symbols: list[SymbolSnapshot]


@with_config(STRICT)
class HistoryTick(TypedDict):
    event_id: str
    price: float
    volume: float
    source: str
    ts: int


@with_config(STRICT)
class History(TypedDict):
    symbol: str
    limit: int
    ticks: list[HistoryTick]  # newest first


@with_config(STRICT)
class Candles(TypedDict):
    symbol: str
    interval: Interval
    interval_ms: int
    tick_size: float  # the symbol's price step, as in SymbolSummary: the chart's price format follows it
    candles: list[Candle]  # oldest first


# System: what the dashboard's status strip shows.


@with_config(STRICT)
class QueueDepth(TypedDict):
    queued: int
    started: int
    failed: int
    scheduled: int


@with_config(STRICT)
class IngestCounts(TypedDict):
    accepted_total: int
    accepted_by_kind: dict[str, int]


@with_config(STRICT)
class Rates(TypedDict):
    ticks_per_s: float
    events_per_s: float
    trades_per_s: float
    symbols: int


@with_config(STRICT)
class RedisReport(TypedDict):
    used_memory_bytes: int
    maxmemory_bytes: int
    maxmemory_policy: str | None
    rates: Rates
    projected_bytes: int
    projected_by_family: dict[str, int]


@with_config(STRICT)
class SystemStatus(TypedDict):
    queue: QueueDepth
    flush_backlog: int
    unflushed_items: int
    queued_items: int
    ingest: IngestCounts
    redis: RedisReport


# Trade-pipeline monitoring (RTTM): the snapshot, traces, stuck trades, DLQ, alerts.


@with_config(STRICT)
class Percentiles(TypedDict):
    p50: float | None  # null while nothing was measured
    p95: float | None
    p99: float | None
    count: int


@with_config(STRICT)
class Tps(TypedDict):
    current: float
    series: list[tuple[int, int]]  # [second, trade events], oldest first
    by_service: dict[str, float]
    by_event_type: dict[str, float]


@with_config(STRICT)
class TradeCounts(TypedDict):
    events_in_window: int
    completed: int
    failed: int
    active: int
    late_events: int


@with_config(STRICT)
class Latency(TypedDict):
    stages: dict[str, Percentiles]
    end_to_end: Percentiles


@with_config(STRICT)
class PartitionLag(TypedDict):
    service: str
    topic: str
    partition: int
    produced_offset: int
    consumed_offset: int
    lag: int
    snapshot_time: int


@with_config(STRICT)
class PipelineDepth(TypedDict):
    partitions: list[PartitionLag]
    by_service: dict[str, int]
    by_topic: dict[str, int]
    max_lag: int
    total_lag: int
    trend: list[tuple[int, int | None]]  # [bucket start, total lag]; null before any metric


@with_config(STRICT)
class Pipeline(PipelineDepth):
    """GET /rttm/pipeline: the snapshot's pipeline section with the time it was computed."""

    computed_at: int


@with_config(STRICT)
class DlqCounts(TypedDict):
    last_1m: int
    in_window: int
    by_service: dict[str, int]
    by_reason: dict[str, int]


@with_config(STRICT)
class ErrorCounts(TypedDict):
    last_1m: int
    in_window: int
    by_service: dict[str, int]
    by_type: dict[str, int]


@with_config(STRICT)
class StuckRef(TypedDict):
    trade_id: str
    last_event_time: int


@with_config(STRICT)
class StuckSummary(TypedDict):
    count: int
    threshold_s: float
    oldest: list[StuckRef]


@with_config(STRICT)
class FiringAlert(TypedDict):
    """An alert as it fires (the firing set in Redis, the snapshot's `alerts`)."""

    alert_id: str
    rule: str
    metric: str
    threshold: float
    value: float
    message: str
    fired_at: int


@with_config(STRICT)
class AlertEvent(FiringAlert):
    """The data of `alert.fired` / `alert.resolved`: the alert, its state, and when it resolved."""

    resolved_at: NotRequired[int]
    state: Literal["fired", "resolved"]


@with_config(STRICT)
class Measures(TypedDict):
    """What `snapshot.compute` measures; the ticker adds the alerts (`RttmSnapshot`)."""

    computed_at: int
    window_s: int
    tps: Tps
    trades: TradeCounts
    latency_ms: Latency
    pipeline: PipelineDepth
    dlq: DlqCounts
    errors: ErrorCounts
    logs: dict[str, int]
    stuck: StuckSummary


@with_config(STRICT)
class RttmSnapshot(Measures):
    """GET /rttm/metrics and the `rttm.metrics` event: the measures and the alerts firing."""

    alerts: list[FiringAlert]


@with_config(STRICT)
class TradeEvent(TypedDict):
    """One event of a trade; those the flusher has not written yet carry only the first five fields."""

    event_key: str
    service_name: str
    event_type: str
    event_status: str
    event_time: int
    source_queue: NotRequired[str | None]
    target_queue: NotRequired[str | None]
    topic_name: NotRequired[str | None]
    partition: NotRequired[int | None]
    offset: NotRequired[int | None]
    message: NotRequired[str | None]
    stage_latency_ms: int | None  # since the previous event; null for the first


@with_config(STRICT)
class TradeDlq(TypedDict):
    service_name: str
    topic_name: str
    reason: str
    event_time: int


@with_config(STRICT)
class TradeError(TypedDict):
    service_name: str
    error_type: str
    error_message: str
    event_time: int


@with_config(STRICT)
class TradeTrace(TypedDict):
    trade_id: str
    status: Literal["completed", "failed", "in_flight"]
    events: list[TradeEvent]  # event-time order
    end_to_end_ms: int
    dlq: list[TradeDlq]
    errors: list[TradeError]


@with_config(STRICT)
class StuckTrade(TypedDict):
    trade_id: str
    last_event_time: int
    last_service: str | None  # null when the trade's events are gone from Redis
    last_event_type: str | None


@with_config(STRICT)
class StuckTrades(TypedDict):
    threshold_s: float
    count: int
    trades: list[StuckTrade]


@with_config(STRICT)
class DlqEvent(TypedDict):
    trade_id: str
    service_name: str
    topic_name: str
    reason: str
    event_time: int


@with_config(STRICT)
class DlqEvents(TypedDict):
    limit: int
    events: list[DlqEvent]  # newest first


@with_config(STRICT)
class AlertRecord(TypedDict):
    """An alert from Postgres: its fired and resolved rows, either of which may not be there (yet)."""

    alert_id: str
    rule: str
    fired_at: int | None
    resolved_at: int | None
    value: float | None
    threshold: float
    message: str | None


@with_config(STRICT)
class Alerts(TypedDict):
    firing: list[FiringAlert]  # oldest first
    history: list[AlertRecord]  # newest first


# The stream: envelopes `{"id", "type", "symbol"?, "data"}`, and the gateway's control events.


@with_config(STRICT)
class ViewUpdate(TypedDict):
    symbol: str
    view: View
    ts: int


@with_config(STRICT)
class TickReceived(TypedDict):
    id: StreamId
    type: Literal["tick.received"]
    symbol: str
    data: TickRecord


@with_config(STRICT)
class MergedTicks(Ohlcv):
    """The ticks of one symbol accepted by one API process since its last such event (TICK_MERGE_MS);
    times in epoch ms."""

    symbol: str
    first_ts: int
    last_ts: int
    last_event_id: str


@with_config(STRICT)
class TicksMerged(TypedDict):
    """The default form of ticks on the stream; `tick.received` (one per tick) only while a client asks."""

    id: StreamId
    type: Literal["ticks.merged"]
    symbol: str
    data: MergedTicks


@with_config(STRICT)
class SymbolUpdated(TypedDict):
    id: StreamId
    type: Literal["symbol.updated"]
    symbol: str
    data: ViewUpdate


@with_config(STRICT)
class RttmMetrics(TypedDict):
    id: StreamId
    type: Literal["rttm.metrics"]
    data: RttmSnapshot


@with_config(STRICT)
class AlertFired(TypedDict):
    id: StreamId
    type: Literal["alert.fired"]
    data: AlertEvent


@with_config(STRICT)
class AlertResolved(TypedDict):
    id: StreamId
    type: Literal["alert.resolved"]
    data: AlertEvent


@with_config(STRICT)
class Overflow(TypedDict):
    """`event: overflow` (no id): this client fell too far behind and is dropped; resume from last_event_id."""

    reason: Literal["slow_client"]
    detail: str
    last_event_id: StreamId | None


@with_config(STRICT)
class Reset(TypedDict):
    """`event: reset` (no id): the events after last_event_id cannot be replayed; start from fresh state."""

    reason: Literal["history_trimmed", "too_far_behind"]
    detail: str
    last_event_id: StreamId | None
    oldest_event_id: StreamId | None


Envelope = Annotated[
    TickReceived | TicksMerged | SymbolUpdated | RttmMetrics | AlertFired | AlertResolved, Field(discriminator="type")
]
ENVELOPE = TypeAdapter(Envelope)
# SSE event name -> the JSON of its `data:` lines.
STREAM_EVENTS: dict[str, type[Any]] = {
    "tick.received": TickReceived,
    "ticks.merged": TicksMerged,
    "symbol.updated": SymbolUpdated,
    "rttm.metrics": RttmMetrics,
    "alert.fired": AlertFired,
    "alert.resolved": AlertResolved,
    "reset": Reset,
    "overflow": Overflow,
}
REF = "#/components/schemas/{model}"


def document_stream(app: FastAPI) -> None:
    """Let the app's /openapi.json describe the stream's events too (`with_stream_events`)."""
    app.openapi = lambda: with_stream_events(FastAPI.openapi(app))  # type: ignore[method-assign]


def with_stream_events(document: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document with the stream's events: their schemas in components, `x-sse-events` naming them."""
    mode: Literal["serialization"] = "serialization"
    keyed = [(event, mode, TypeAdapter(shape)) for event, shape in STREAM_EVENTS.items()]
    refs, definitions = TypeAdapter.json_schemas(keyed, ref_template=REF)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two shapes are named {name}: the routes' and the stream's differ")
    document["x-sse-events"] = {event: refs[(event, mode)] for event in STREAM_EVENTS}
    return document
