// Display formatting. Times are shown in UTC, like the API and the chart.
// Number formats are built once per set of options and reused: an Intl.NumberFormat costs far more to
// create than to call, and toLocaleString creates one per call (per cell, per render).

export const DASH = "—";
const LOCALE = "en-US";
const MINUS = "\u2212"; // a real minus sign: as wide as "+", and read as "minus" by screen readers

const formats = new Map<string, Intl.NumberFormat>();

/** The shared formatter for these options (created on first use). */
export function numberFormat(options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = JSON.stringify(options);
  let format = formats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(LOCALE, options);
    formats.set(key, format);
  }
  return format;
}

function fixed(decimals: number): Intl.NumberFormat {
  return numberFormat({ minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function isNum(value: number | null | undefined): value is number {
  return value !== null && value !== undefined && Number.isFinite(value);
}

/** Decimals by magnitude: 2 from 1,000, 4 from 1, else 6 (for a price whose symbol's tick size is unknown). */
export function priceDecimals(value: number): number {
  const abs = Math.abs(value);
  return abs >= 1000 ? 2 : abs >= 1 ? 4 : 6;
}

/** Decimals that show every multiple of `tickSize` (0.01 -> 2, 0.00001 -> 5, 0.25 -> 2, 5 -> 0). */
export function tickDecimals(tickSize: number): number {
  if (!(tickSize > 0) || !Number.isFinite(tickSize)) return 2;
  for (let places = 0; places <= 12; places += 1) {
    if (Math.abs(Number(tickSize.toFixed(places)) - tickSize) < tickSize * 1e-9) return places;
  }
  return 12;
}

/** A price with its symbol's decimals (from its tick size), else decimals by magnitude. */
export function fmtPrice(value: number | null | undefined, tickSize?: number | null): string {
  if (!isNum(value)) return DASH;
  return withMinus(fixed(tickSize ? tickDecimals(tickSize) : priceDecimals(value)).format(value));
}

export function fmtNum(value: number | null | undefined, decimals = 0): string {
  if (!isNum(value)) return DASH;
  return withMinus(fixed(decimals).format(value));
}

/** 1.2K, 3.91M, 4.2B: volumes and counts that are read at a glance, not digit by digit. */
export function fmtCompact(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  const decimals = Math.abs(value) < 1000 ? 2 : undefined;
  const options: Intl.NumberFormatOptions = decimals === undefined
    ? { notation: "compact", maximumSignificantDigits: 3 }
    : { maximumFractionDigits: decimals };
  return withMinus(numberFormat(options).format(value));
}

/** +1.23% / −0.40%: the sign is always shown, so up and down do not depend on colour. */
export function fmtPct(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  const text = fixed(2).format(Math.abs(value));
  const sign = text === "0.00" ? "" : value > 0 ? "+" : MINUS;
  return `${sign}${text}%`;
}

export function fmtMs(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

/** HH:MM:SS.mmm UTC */
export function fmtTime(ms: number | null | undefined): string {
  if (!isNum(ms)) return DASH;
  return new Date(ms).toISOString().slice(11, 23);
}

/** HH:MM:SS UTC */
export function fmtClock(ms: number | null | undefined): string {
  if (!isNum(ms)) return DASH;
  return new Date(ms).toISOString().slice(11, 19);
}

/** YYYY-MM-DD HH:MM:SS[.mmm] UTC */
export function fmtDateTime(ms: number | null | undefined, withMs = false): string {
  if (!isNum(ms)) return DASH;
  return new Date(ms).toISOString().slice(0, withMs ? 23 : 19).replace("T", " ");
}

export function fmtAge(ms: number | null | undefined, now: number): string {
  if (!isNum(ms)) return DASH;
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function withMinus(text: string): string {
  return text.startsWith("-") ? MINUS + text.slice(1) : text;
}

/** A tick's volume: compact from 1,000 (489.3K), else with the 4 decimals small lots need (0.0034). */
export function fmtVolume(value: number | null | undefined): string {
  return isNum(value) && Math.abs(value) >= 1000 ? fmtCompact(value) : fmtNum(value, 4);
}
