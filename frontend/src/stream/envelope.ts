// Parsing of SSE payloads: every data event is an envelope {"id","type","symbol"?,"data"}.
// Anything malformed or of a type this dashboard does not know is dropped (null).
import type { AlertEvent, MergedTicks, RttmSnapshot, SymbolView, Tick, ViewUpdate } from "../api/types";

export type Envelope =
  | { id: string; type: "tick.received"; symbol: string | null; data: Tick }
  | { id: string; type: "ticks.merged"; symbol: string | null; data: MergedTicks }
  | { id: string; type: "symbol.updated"; symbol: string | null; data: ViewUpdate }
  | { id: string; type: "rttm.metrics"; symbol: null; data: RttmSnapshot }
  | { id: string; type: "alert.fired" | "alert.resolved"; symbol: null; data: AlertEvent };

export type EnvelopeType = Envelope["type"];

export const DATA_TYPES: readonly EnvelopeType[] = [
  "tick.received",
  "ticks.merged",
  "symbol.updated",
  "rttm.metrics",
  "alert.fired",
  "alert.resolved",
];

/** Control events from the gateway; they carry no id. */
export type ControlType = "reset" | "overflow";
export const CONTROL_TYPES: readonly ControlType[] = ["reset", "overflow"];

export interface ControlEvent {
  type: ControlType;
  reason: string | null;
  detail: string | null;
  lastEventId: string | null;
}

const STREAM_ID = /^\d+-\d+$/;

export function isStreamId(value: unknown): value is string {
  return typeof value === "string" && STREAM_ID.test(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/**
 * The envelope of one SSE event, or null if it is bad JSON, not an envelope,
 * of an unknown type, or its data does not have the fields the type needs.
 * `eventType` is the SSE `event:` name; when given it must match the envelope.
 */
export function parseEnvelope(raw: string, eventType?: string): Envelope | null {
  let env: unknown;
  try {
    env = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(env)) return null;
  const { id, type, data } = env;
  const symbol = typeof env.symbol === "string" ? env.symbol : null;
  if (typeof type !== "string" || !isStreamId(id) || !isObject(data)) return null;
  if (eventType && eventType !== "message" && eventType !== type) return null;
  switch (type) {
    case "tick.received":
      if (typeof data.symbol !== "string" || !isNumber(data.price) || !isNumber(data.ts)) return null;
      return { id, type, symbol: symbol ?? data.symbol, data: data as unknown as Tick };
    case "ticks.merged":
      if (typeof data.symbol !== "string" || !isNumber(data.close) || !isNumber(data.last_ts) || !isNumber(data.count)) {
        return null;
      }
      return { id, type, symbol: symbol ?? data.symbol, data: data as unknown as MergedTicks };
    case "symbol.updated": {
      const view = data.view;
      if (!isObject(view) || typeof view.symbol !== "string" || !isNumber(view.price) || !isNumber(view.version)) {
        return null;
      }
      const sym = typeof data.symbol === "string" ? data.symbol : view.symbol;
      const payload = { symbol: sym, view: view as unknown as SymbolView, ts: isNumber(data.ts) ? data.ts : view.ts };
      return { id, type, symbol: symbol ?? sym, data: payload as ViewUpdate };
    }
    case "rttm.metrics":
      if (!isNumber(data.computed_at) || !isObject(data.tps)) return null;
      return { id, type, symbol: null, data: data as unknown as RttmSnapshot };
    case "alert.fired":
    case "alert.resolved":
      if (typeof data.rule !== "string") return null;
      return { id, type, symbol: null, data: data as unknown as AlertEvent };
    default:
      return null;
  }
}

/** A `reset` or `overflow` control event; tolerant of a missing or bad body. */
export function parseControl(type: ControlType, raw: string): ControlEvent {
  let body: unknown = null;
  try {
    body = JSON.parse(raw);
  } catch {
    body = null;
  }
  const obj = isObject(body) ? body : {};
  return {
    type,
    reason: typeof obj.reason === "string" ? obj.reason : null,
    detail: typeof obj.detail === "string" ? obj.detail : null,
    lastEventId: isStreamId(obj.last_event_id) ? obj.last_event_id : null,
  };
}
