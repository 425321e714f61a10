// Shapes of the API's JSON (see README "API" and doc/services/rttm.md).
// All times are epoch milliseconds, UTC.

export interface SymbolSummary {
  symbol: string;
  price: number | null;
  ts: number | null;
  version: number | null;
}

export interface Candle {
  t: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  count: number;
}

export type Interval = "1m" | "5m" | "15m";
export const INTERVALS: readonly Interval[] = ["1m", "5m", "15m"];

export interface ViewTick {
  event_id: string;
  price: number;
  volume: number;
  ts: number;
}

/** View W: the latest per-symbol view computed by calc-a and calc-b. */
export interface SymbolView {
  symbol: string;
  version: number;
  price: number;
  volume: number;
  ts: number;
  event_id: string;
  change: number | null;
  change_pct: number | null;
  change_1m: number | null;
  change_1m_pct: number | null;
  sma_10: number | null;
  volume_1m: number | null;
  vwap_1m: number | null;
  high_1m: number | null;
  low_1m: number | null;
  trades_1m: number | null;
  last_ticks: ViewTick[];
  candles: Partial<Record<Interval, Candle | null>>;
  latency_ms: number | null;
  computed_at: number | null;
}

export interface CandlesResponse {
  symbol: string;
  interval: Interval;
  interval_ms: number;
  candles: Candle[];
}

export interface Tick {
  event_id: string;
  symbol: string;
  price: number;
  volume: number;
  source?: string;
  ts: number;
  received_at?: number;
}

export interface HistoryTick {
  event_id: string;
  price: number;
  volume: number;
  source: string;
  ts: number;
}

export interface HistoryResponse {
  symbol: string;
  limit: number;
  ticks: HistoryTick[];
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
  count: number;
}

export interface PartitionLag {
  service: string;
  topic: string;
  partition: number;
  produced_offset: number;
  consumed_offset: number;
  lag: number;
  snapshot_time: number;
}

export interface Alert {
  alert_id: string;
  rule: string;
  metric?: string;
  threshold: number;
  value: number;
  message: string;
  fired_at: number;
  resolved_at?: number | null;
  state?: "firing" | "resolved" | string;
}

export interface RttmSnapshot {
  computed_at: number;
  window_s: number;
  tps: {
    current: number;
    series: Array<[number, number]>;
    by_service: Record<string, number>;
    by_event_type: Record<string, number>;
  };
  trades: { events_in_window: number; completed: number; failed: number; active: number; late_events: number };
  latency_ms: { stages: Record<string, Percentiles>; end_to_end: Percentiles };
  pipeline: {
    partitions: PartitionLag[];
    by_service: Record<string, number>;
    by_topic: Record<string, number>;
    max_lag: number;
    total_lag: number;
    trend: Array<[number, number | null]>;
  };
  dlq: { last_1m: number; in_window: number; by_service: Record<string, number>; by_reason: Record<string, number> };
  errors: { last_1m: number; in_window: number; by_service: Record<string, number>; by_type: Record<string, number> };
  logs: Record<string, number>;
  stuck: { count: number; threshold_s: number; oldest: Array<{ trade_id: string; last_event_time: number }> };
  alerts: Alert[];
}

export interface DlqEvent {
  trade_id: string;
  service_name: string;
  topic_name: string;
  reason: string;
  event_time: number;
}

export interface StuckTrade {
  trade_id: string;
  last_event_time: number;
  last_service: string;
  last_event_type: string;
}

export interface StuckResponse {
  count: number;
  threshold_s: number;
  trades: StuckTrade[];
}

export interface AlertsResponse {
  firing: Alert[];
  history: Alert[];
}

export interface TradeEvent {
  event_key: string;
  service_name: string;
  event_type: string;
  event_status: string;
  event_time: number;
  stage_latency_ms: number | null;
  [extra: string]: unknown;
}

export interface TradeTrace {
  trade_id: string;
  status: "completed" | "failed" | "in_flight" | string;
  events: TradeEvent[];
  end_to_end_ms: number | null;
  dlq: Array<Record<string, unknown>>;
  errors: Array<Record<string, unknown>>;
}

export interface SystemStatus {
  queue: { queued: number; started: number; failed: number; scheduled: number };
  flush_backlog: number;
  ingest: { accepted_total: number; accepted_by_kind?: Record<string, number> };
}
