import { afterEach, describe, expect, it, vi } from "vitest";
import type { Candle } from "../api/types";
import { makeCandle } from "../test/factories";
import { CandleSync, LATE_TICKS_MS, REFRESH_MIN_BARS, type CandleSink } from "./candleSync";

const MIN = 60_000;
const T0 = 1_795_565_040_000 - (1_795_565_040_000 % MIN);

/** What the chart was asked to draw, replayed into the bars it shows. */
class DrawnBars implements CandleSink {
  shown: Candle[] = [];
  replaced = 0;
  replace(bars: readonly Candle[]): void {
    this.shown = [...bars];
    this.replaced += 1;
  }
  update(bar: Candle, historical: boolean): void {
    const i = this.shown.findIndex((b) => b.t === bar.t);
    if (i >= 0) this.shown[i] = bar;
    else if (!historical && (this.shown.at(-1)?.t ?? -Infinity) < bar.t) this.shown.push(bar);
    else throw new Error(`update cannot insert the bar at ${bar.t}`);
  }
}

/** The API's candles as they stand; each fetch answers the newest `limit` of them. */
function api(initial: Candle[]) {
  const server = { candles: initial, asked: [] as number[] };
  const fetch = async (limit: number) => {
    server.asked.push(limit);
    return server.candles.slice(-limit);
  };
  return { server, fetch };
}

/** Let every answer in flight arrive (the fake API answers at once). */
const settle = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
};

async function started(candles: Candle[], now = T0) {
  const { server, fetch } = api(candles);
  const sink = new DrawnBars();
  const clock = { now };
  const sync = new CandleSync({ fetch, sink, intervalMs: MIN, limit: 500, now: () => clock.now });
  await sync.load();
  return { server, sink, sync, clock };
}

describe("CandleSync", () => {
  afterEach(() => vi.useRealTimers());

  it("ends a bar that closed between frames with its final close and volume", async () => {
    const { server, sink, sync, clock } = await started([makeCandle({ t: T0, open: 100, close: 101, volume: 3, count: 3 })]);
    sync.live(makeCandle({ t: T0, open: 100, close: 102, volume: 4, count: 4 })); // a frame's view

    // Before the next frame, two more ticks end the bar, and a tick opens the next bucket: the next frame's
    // view holds only the new bucket, so the bar's last ticks never reach the chart through the views.
    const closed = makeCandle({ t: T0, open: 100, high: 104, close: 103.5, volume: 6, count: 6 });
    const opened = makeCandle({ t: T0 + MIN, open: 103.6, high: 103.6, low: 103.6, close: 103.6, volume: 1, count: 1 });
    server.candles = [closed, opened];
    clock.now = T0 + MIN + 200;
    sync.live(opened); // a new bucket: the sync refetches the recent candles by itself
    await settle();

    expect(sink.shown).toEqual([closed, opened]);
    expect(sink.shown[0]?.close).toBe(103.5);
    expect(sink.shown[0]?.volume).toBe(6);
    expect(server.asked).toEqual([500, REFRESH_MIN_BARS]);
    sync.stop(); // and its second look, LATE_TICKS_MS on
  });

  it("reads a closed bar once more a little later, for ticks of it committed late", async () => {
    vi.useFakeTimers();
    const { server, sink, sync } = await started([makeCandle({ t: T0, close: 100, count: 3 })]);
    server.candles = [makeCandle({ t: T0, close: 101, count: 4 }), makeCandle({ t: T0 + MIN, count: 1 })];
    sync.live(makeCandle({ t: T0 + MIN, count: 1 }));
    await vi.advanceTimersByTimeAsync(0);
    const late = makeCandle({ t: T0, close: 99.5, volume: 5, count: 5 }); // a tick of the closed bar, late
    server.candles = [late, makeCandle({ t: T0 + MIN, count: 2 })];
    await vi.advanceTimersByTimeAsync(LATE_TICKS_MS);
    expect(sink.shown[0]).toEqual(late);
    expect(server.asked).toEqual([500, REFRESH_MIN_BARS, REFRESH_MIN_BARS]);
    sync.stop();
  });

  it("draws the bars that closed while the tab was hidden or the stream down", async () => {
    const { server, sink, sync, clock } = await started([makeCandle({ t: T0, count: 2 })]);
    const later = Array.from({ length: 8 }, (_, i) => makeCandle({ t: T0 + (i + 1) * MIN, close: 200 + i, count: 5 }));
    server.candles = [makeCandle({ t: T0, count: 4 }), ...later];
    clock.now = T0 + 8 * MIN + 30_000;

    await sync.refresh(); // the tab became visible again (or the stream reconnected)

    expect(sink.shown.map((b) => b.t)).toEqual([T0, ...later.map((b) => b.t)]);
    expect(sink.shown[0]?.count).toBe(4);
    expect(server.asked.at(-1)).toBe(10); // the 9 buckets since the newest bar held, and one more
  });

  it("does not let a late answer undo a newer live candle", async () => {
    const { server, sink, sync } = await started([makeCandle({ t: T0, count: 2 })]);
    const live = makeCandle({ t: T0, close: 120, count: 9 });
    server.candles = [makeCandle({ t: T0, close: 110, count: 5 })]; // computed before the view we hold
    sync.live(live);
    await sync.refresh();
    expect(sink.shown).toEqual([live]);
  });

  it("runs one more refetch when asked during one, and none after stop", async () => {
    const { server, sync } = await started([makeCandle({ t: T0 })]);
    void sync.refresh();
    void sync.refresh(); // while the first is in flight: its answer may predate what was asked for
    void sync.refresh();
    await settle();
    expect(server.asked).toEqual([500, REFRESH_MIN_BARS, REFRESH_MIN_BARS]);
    sync.stop();
    await sync.refresh();
    expect(server.asked).toHaveLength(3);
  });

  it("keeps a live candle that came before the history and draws it after", async () => {
    const { fetch } = api([makeCandle({ t: T0, count: 2 })]);
    const sink = new DrawnBars();
    const sync = new CandleSync({ fetch, sink, intervalMs: MIN, limit: 500, now: () => T0 });
    const loading = sync.load();
    sync.live(makeCandle({ t: T0, close: 130, count: 3 }));
    await loading;
    expect(sink.shown.map((b) => b.close)).toEqual([130]);
  });
});
