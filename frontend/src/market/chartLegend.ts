// What the chart's legend says of a bar (the hovered one, else the newest), in the symbol's price format.
import type { Candle } from "../api/types";
import { tickDecimals } from "../util/format";

export { tickDecimals };

/** lightweight-charts' price format of a symbol: its tick size's decimals, moves by whole ticks. */
export interface PriceFormat {
  precision: number;
  minMove: number;
}

export const DEFAULT_TICK_SIZE = 0.01; // until the API has said (the API's own default)

export function priceFormat(tickSize: number): PriceFormat {
  const ok = tickSize > 0 && Number.isFinite(tickSize);
  return { precision: tickDecimals(tickSize), minMove: ok ? tickSize : DEFAULT_TICK_SIZE };
}

export interface Legend {
  time: string; // "2026-12-02 14:05 UTC"
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string; // compact: "1.23K"
  change: string; // vs the previous bar's close (the bar's open for the first): "+12.50 (+0.02%)"
  direction: "up" | "down" | "flat";
}

// Formatters are costly to build: one per precision, kept.
const priceFormatters = new Map<number, Intl.NumberFormat>();
const volumeFormatter = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
const percentFormatter = new Intl.NumberFormat("en-US", {
  style: "percent",
  minimumFractionDigits: 2,
  maximumFractionDigits: 2,
  signDisplay: "exceptZero",
});

function priceFormatter(precision: number): Intl.NumberFormat {
  let f = priceFormatters.get(precision);
  if (!f) {
    // No grouping: the price axis and the rest of the dashboard show prices as 65012.34.
    f = new Intl.NumberFormat("en-US", {
      minimumFractionDigits: precision,
      maximumFractionDigits: precision,
      useGrouping: false,
    });
    priceFormatters.set(precision, f);
  }
  return f;
}

/** A price in the symbol's format: "65012.34", "1.08345". */
export function formatPrice(value: number, format: PriceFormat): string {
  return priceFormatter(format.precision).format(value);
}

/** The legend of `bar`; `previous` is the bar before it (null for the first one held). */
export function legendFor(bar: Candle, previous: Candle | null, format: PriceFormat): Legend {
  const base = previous ? previous.close : bar.open;
  const diff = bar.close - base;
  // Rounded to whole ticks first, so a float's dust (0.30000000000000004) never shows as a move.
  const ticks = Math.round(diff / format.minMove);
  const direction = ticks > 0 ? "up" : ticks < 0 ? "down" : "flat";
  const sign = ticks > 0 ? "+" : ticks < 0 ? "−" : "";
  const move = formatPrice(Math.abs(ticks * format.minMove), format);
  const pct = base > 0 ? percentFormatter.format(ticks === 0 ? 0 : diff / base) : "—";
  return {
    time: `${new Date(bar.t).toISOString().slice(0, 16).replace("T", " ")} UTC`,
    open: formatPrice(bar.open, format),
    high: formatPrice(bar.high, format),
    low: formatPrice(bar.low, format),
    close: formatPrice(bar.close, format),
    volume: volumeFormatter.format(bar.volume),
    change: `${sign}${move} (${pct.replace("-", "−")})`,
    direction,
  };
}

/** The chart in words, for screen readers: the bars held, the span's change, its range and the last close.
 * "42 1m bars from 13:02 to 13:43 UTC: last close 64687.22, +0.41% over them, low 64320.10, high 64890.00." */
export function chartSummary(bars: readonly Candle[], interval: string, format: PriceFormat): string {
  const first = bars[0];
  const last = bars[bars.length - 1];
  if (!first || !last) return "No candles yet.";
  let low = first.low;
  let high = first.high;
  for (const b of bars) {
    if (b.low < low) low = b.low;
    if (b.high > high) high = b.high;
  }
  const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
  const change = first.open > 0 ? percentFormatter.format((last.close - first.open) / first.open).replace("-", "−") : "—";
  const count = bars.length === 1 ? `1 ${interval} bar` : `${bars.length} ${interval} bars`;
  return (
    `${count} from ${hhmm(first.t)} to ${hhmm(last.t)} UTC: last close ${formatPrice(last.close, format)}, ` +
    `${change} over them, low ${formatPrice(low, format)}, high ${formatPrice(high, format)}.`
  );
}
