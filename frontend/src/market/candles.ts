// Merging into a loaded candle series: the view's current candle (per frame) and refetched recent candles
// (which carry the final ticks of bars that closed between frames, or while the tab or the stream was away).
import type { Candle, Interval } from "../api/types";

/** Each interval's length (the API's `interval_ms`). */
export const INTERVAL_MS: Record<Interval, number> = { "1m": 60_000, "5m": 300_000, "15m": 900_000 };
export const MAX_BARS = 1500; // bars kept per chart; older ones are dropped (see trimBars)

export type MergeResult = "append" | "update" | "ignore";

/**
 * Merge `candle` (the view's current candle of this interval) into `bars`
 * (oldest first), in place:
 * - a newer bucket is appended;
 * - the same bucket replaces the last bar, unless it holds fewer ticks (a stale view);
 * - an older bucket is ignored (the chart only moves forward).
 */
export function mergeCandle(bars: Candle[], candle: Candle): MergeResult {
  const last = bars[bars.length - 1];
  if (!last || candle.t > last.t) {
    bars.push(candle);
    return "append";
  }
  if (candle.t === last.t) {
    if (candle.count < last.count) return "ignore";
    if (sameCandle(candle, last)) return "ignore";
    bars[bars.length - 1] = candle;
    return "update";
  }
  return "ignore";
}

function sameCandle(a: Candle, b: Candle): boolean {
  return (
    a.open === b.open &&
    a.high === b.high &&
    a.low === b.low &&
    a.close === b.close &&
    a.volume === b.volume &&
    a.count === b.count
  );
}

/** Drop the oldest bars once there are more than `max` plus a slack; true if it dropped any. */
export function trimBars(bars: Candle[], max = MAX_BARS, slack = Math.ceil(max / 4)): boolean {
  if (bars.length <= max + slack) return false;
  bars.splice(0, bars.length - max);
  return true;
}

/** Valid candles only, sorted by time, one per bucket (the last one wins). */
export function normaliseCandles(candles: readonly Candle[]): Candle[] {
  const byTime = new Map<number, Candle>();
  for (const c of candles) {
    if (Number.isFinite(c.t) && Number.isFinite(c.open) && Number.isFinite(c.close)) byTime.set(c.t, c);
  }
  return [...byTime.values()].sort((a, b) => a.t - b.t);
}

export interface HistoryMerge {
  /** Bars replaced or appended at the end, oldest first: each can be drawn with an update. */
  changed: Candle[];
  /** A bar went in before the newest one: the series must be drawn again. */
  inserted: boolean;
}

/**
 * Merge `fetched` (candles from the API) into `bars` (oldest first), in place: a bucket the series lacks
 * is inserted; a bucket it holds is replaced unless the fetched one holds fewer ticks (an answer older
 * than the live view) or is the same.
 */
export function mergeHistory(bars: Candle[], fetched: readonly Candle[]): HistoryMerge {
  const out: HistoryMerge = { changed: [], inserted: false };
  for (const c of normaliseCandles(fetched)) {
    const i = lowerBound(bars, c.t);
    const held = bars[i];
    if (held && held.t === c.t) {
      if (c.count < held.count || sameCandle(c, held)) continue;
      bars[i] = c;
    } else {
      bars.splice(i, 0, c);
      if (i < bars.length - 1) out.inserted = true;
    }
    out.changed.push(c);
  }
  return out;
}

/** The index of the first bar at or after `t`. */
export function lowerBound(bars: readonly Candle[], t: number): number {
  let lo = 0;
  let hi = bars.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((bars[mid] as Candle).t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
