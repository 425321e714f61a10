// Keeps one chart's bars (one symbol and interval) right. The view W carries only the current bucket and the
// chart hears only the newest view per frame, so the last ticks of a bar that closed between two frames never
// reach it, and no bar that closed while the tab was hidden or the stream was down ever does. So, besides
// merging the view's candle, the sync refetches the recent candles when a bucket closes, and whenever its
// owner says bars may have been missed (stream reconnected, tab visible again: `refresh`).
import type { Candle } from "../api/types";
import { MAX_BARS, mergeCandle, mergeHistory, normaliseCandles, trimBars } from "./candles";

export const REFRESH_MIN_BARS = 3; // the bar that just closed, the current one, and one before for good measure
// A closed bucket is read again this long after it closed: a tick of it committed late (concurrent posts
// commit a few ms out of order; jobs run every 50 ms) may reach calc-a after the view that opened the next.
export const LATE_TICKS_MS = 3_000;

/** Where the bars are drawn (the chart). */
export interface CandleSink {
  /** Draw every bar again (history loaded, a missed bar inserted, old bars trimmed). */
  replace(bars: readonly Candle[]): void;
  /** Draw one bar: the newest (`historical` false) or an older one that changed. */
  update(bar: Candle, historical: boolean): void;
}

export interface CandleSyncOptions {
  /** The newest `limit` candles, oldest first (GET /symbols/{id}/candles). */
  fetch: (limit: number) => Promise<readonly Candle[]>;
  sink: CandleSink;
  intervalMs: number;
  /** Candles of the first load, and most a refetch asks for. */
  limit: number;
  now?: () => number;
  /** A refetch failed: the bars stay as they are until the next one. */
  onRefreshError?: (err: unknown) => void;
}

export class CandleSync {
  private readonly bars: Candle[] = [];
  private loaded = false;
  private pending: Candle | null = null; // a live candle that came while the history was loading
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false; // asked for while one was in flight: run once more after it
  private stopped = false;
  private lateTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: CandleSyncOptions) {
    this.now = opts.now ?? Date.now;
  }

  get barCount(): number {
    return this.bars.length;
  }

  /** The bars held, oldest first (read only). */
  get all(): readonly Candle[] {
    return this.bars;
  }

  /** Fetch the history and draw it; a failure draws an empty series and rethrows (live candles still come). */
  async load(): Promise<void> {
    let history: readonly Candle[] = [];
    try {
      history = await this.opts.fetch(this.opts.limit);
    } finally {
      if (!this.stopped) this.setHistory(history);
    }
  }

  /** The view's current candle of this interval (at most once per frame). */
  live(candle: Candle | null | undefined): void {
    if (!candle || this.stopped) return;
    if (!this.loaded) {
      if (!this.pending || candle.t >= this.pending.t) this.pending = candle;
      return;
    }
    const hadBars = this.bars.length > 0;
    const result = mergeCandle(this.bars, candle);
    if (result === "ignore") return;
    if (trimBars(this.bars)) this.opts.sink.replace(this.bars);
    else this.opts.sink.update(candle, false);
    if (result === "append" && hadBars) this.bucketClosed();
  }

  /** The bucket before the newest closed: fetch its last ticks now, and once more for late ones. */
  private bucketClosed(): void {
    void this.refresh();
    if (this.lateTimer !== null) clearTimeout(this.lateTimer);
    this.lateTimer = setTimeout(() => {
      this.lateTimer = null;
      void this.refresh();
    }, LATE_TICKS_MS);
  }

  /** Refetch the candles since the newest bar held (at least REFRESH_MIN_BARS) and merge them. */
  refresh(): Promise<void> {
    if (!this.loaded || this.stopped) return Promise.resolve(); // a load is on its way: it reads them all
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = this.refreshOnce().finally(() => {
      this.refreshing = null;
      if (this.refreshAgain) {
        this.refreshAgain = false;
        void this.refresh();
      }
    });
    return this.refreshing;
  }

  /** The chart went away (symbol or interval changed): late answers are dropped. */
  stop(): void {
    this.stopped = true;
    if (this.lateTimer !== null) clearTimeout(this.lateTimer);
    this.lateTimer = null;
  }

  private setHistory(history: readonly Candle[]): void {
    this.bars.splice(0, this.bars.length, ...normaliseCandles(history).slice(-MAX_BARS));
    this.loaded = true;
    this.opts.sink.replace(this.bars);
    const pending = this.pending;
    this.pending = null;
    if (pending) this.live(pending);
  }

  private async refreshOnce(): Promise<void> {
    const last = this.bars[this.bars.length - 1];
    const missed = last ? Math.ceil((this.now() - last.t) / this.opts.intervalMs) + 1 : this.opts.limit;
    const limit = Math.min(this.opts.limit, Math.max(REFRESH_MIN_BARS, missed));
    let fetched: readonly Candle[];
    try {
      fetched = await this.opts.fetch(limit);
    } catch (err) {
      this.opts.onRefreshError?.(err);
      return;
    }
    if (this.stopped) return;
    const newestT = this.bars[this.bars.length - 1]?.t ?? -Infinity;
    const merged = mergeHistory(this.bars, fetched);
    if (merged.inserted || trimBars(this.bars)) {
      this.opts.sink.replace(this.bars);
      return;
    }
    // Oldest first: the bars held that changed (historical updates), then those appended after them.
    for (const bar of merged.changed) this.opts.sink.update(bar, bar.t <= newestT);
  }
}
