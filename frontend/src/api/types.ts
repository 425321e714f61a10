// The dashboard's names for the API's JSON and the stream's events. The shapes themselves are generated
// from the API's OpenAPI document into schema.gen.ts (`make types`; services/common/contract.py declares
// them), so they cannot drift from what the API sends. All times are epoch milliseconds, UTC.
import type { components } from "./schema.gen";

type Schemas = components["schemas"];

export type SymbolSummary = Schemas["SymbolSummary"];
export type SymbolList = Schemas["SymbolList"];
export type Candle = Schemas["Candle"];
export type Interval = Schemas["Candles"]["interval"];
export const INTERVALS: readonly Interval[] = ["1m", "5m", "15m"];
export type ViewTick = Schemas["ViewTick"];
/** View W: the latest per-symbol view computed by calc-a and calc-b. */
export type SymbolView = Schemas["View"];
export type CandlesResponse = Schemas["Candles"];
/** A tick as published in `tick.received`. */
export type Tick = Schemas["TickRecord"];
/** The ticks of one symbol merged over TICK_MERGE_MS, as published in `ticks.merged`. */
export type MergedTicks = Schemas["MergedTicks"];
/** A row of the tape: one tick (a view's last ticks carry no source or received_at), or `count` merged ticks
 * shown by their last price and time and their summed volume. */
export type TapeTick = Pick<Tick, "event_id" | "symbol" | "price" | "volume" | "ts"> & { count?: number };
export type HistoryTick = Schemas["HistoryTick"];
export type HistoryResponse = Schemas["History"];

export type Percentiles = Schemas["Percentiles"];
export type PartitionLag = Schemas["PartitionLag"];
export type RttmSnapshot = Schemas["RttmSnapshot"];
export type FiringAlert = Schemas["FiringAlert"];
/** The data of `alert.fired` / `alert.resolved`. */
export type AlertEvent = Schemas["AlertEvent"];
/** An alert from the history: its fired or resolved row may be missing, so those fields may be null. */
export type AlertRecord = Schemas["AlertRecord"];
/** What the alert board is given: a firing alert, an alert event, or a history record (each field as
 * loose as the loosest of the three has it). */
export type Alert = Pick<AlertRecord, "alert_id" | "rule" | "threshold" | "value" | "message" | "fired_at"> &
  Partial<Pick<AlertRecord, "resolved_at">> &
  Partial<Pick<AlertEvent, "metric" | "state">>;
export type AlertsResponse = Schemas["Alerts"];
export type DlqEvent = Schemas["DlqEvent"];
export type DlqResponse = Schemas["DlqEvents"];
export type StuckTrade = Schemas["StuckTrade"];
export type StuckResponse = Schemas["StuckTrades"];
export type TradeEvent = Schemas["TradeEvent"];
export type TradeTrace = Schemas["TradeTrace"];
export type SystemStatus = Schemas["SystemStatus"];

/** The data of `symbol.updated`. */
export type ViewUpdate = Schemas["ViewUpdate"];

/** GET /symbols/views: every symbol's view and session in one answer. */
export type Snapshot = Schemas["Snapshot"];
export type SymbolSnapshot = Schemas["SymbolSnapshot"];
/** The UTC day of a symbol's latest tick and the day's first price. */
export type Session = Schemas["Session"];
