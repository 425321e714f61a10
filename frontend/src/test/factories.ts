// Keyword-style factories for API shapes.
import type { Alert, Candle, RttmSnapshot, SymbolView, SystemStatus, Tick } from "../api/types";

export function makeCandle(over: Partial<Candle> = {}): Candle {
  return { t: 1_795_565_040_000, open: 100, high: 101, low: 99, close: 100.5, volume: 3, count: 3, ...over };
}

export function makeTick(over: Partial<Tick> = {}): Tick {
  const ts = 1_795_565_084_139;
  return { event_id: "e-1", symbol: "BTCUSDT", price: 100, volume: 1, source: "test", ts, received_at: ts + 2, ...over };
}

export function makeView(over: Partial<SymbolView> = {}): SymbolView {
  return {
    symbol: "BTCUSDT",
    version: 1,
    price: 100,
    volume: 1,
    ts: 1_795_565_084_139,
    event_id: "e-1",
    change: 0.5,
    change_pct: 0.5,
    change_1m: 1,
    change_1m_pct: 1,
    sma_10: 99.8,
    volume_1m: 12,
    vwap_1m: 99.9,
    high_1m: 101,
    low_1m: 99,
    trades_1m: 12,
    last_ticks: [],
    candles: { "1m": makeCandle(), "5m": null, "15m": null },
    latency_ms: 12,
    computed_at: 1_795_565_084_151,
    ...over,
  };
}

export function makeAlert(over: Partial<Alert> = {}): Alert {
  return {
    alert_id: "a-1",
    rule: "pipeline_depth",
    metric: "pipeline_depth",
    threshold: 1000,
    value: 1500,
    message: "largest partition lag 1500 > 1000",
    fired_at: 1_000_000,
    ...over,
  };
}

export function makeSnapshot(over: Partial<RttmSnapshot> = {}): RttmSnapshot {
  return {
    computed_at: 2_000_000,
    window_s: 300,
    tps: { current: 12.5, series: [[1_999_000, 12]], by_service: {}, by_event_type: {} },
    trades: { events_in_window: 10, completed: 2, failed: 0, active: 1, late_events: 0 },
    latency_ms: { stages: {}, end_to_end: { p50: 10, p95: 20, p99: 30, count: 2 } },
    pipeline: { partitions: [], by_service: {}, by_topic: {}, max_lag: 0, total_lag: 0, trend: [] },
    dlq: { last_1m: 0, in_window: 0, by_service: {}, by_reason: {} },
    errors: { last_1m: 0, in_window: 0, by_service: {}, by_type: {} },
    logs: {},
    stuck: { count: 0, threshold_s: 30, oldest: [] },
    alerts: [],
    ...over,
  };
}

export function makeSystemStatus(over: Partial<SystemStatus> = {}): SystemStatus {
  return {
    queue: { queued: 0, started: 0, failed: 0, scheduled: 0 },
    flush_backlog: 0,
    unflushed_items: 0,
    queued_items: 0,
    ingest: { accepted_total: 0, accepted_by_kind: {} },
    redis: {
      used_memory_bytes: 2_000_000,
      maxmemory_bytes: 0,
      maxmemory_policy: "noeviction",
      rates: { ticks_per_s: 0, events_per_s: 0, trades_per_s: 0, symbols: 0 },
      projected_bytes: 1_000_000,
      projected_by_family: {},
    },
    ...over,
  };
}
