// Merging a view's current candle into a loaded candle series.
import type { Candle } from "../api/types";

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
