import { describe, expect, it } from "vitest";
import { makeCandle } from "../test/factories";
import { lowerBound, mergeCandle, mergeHistory, normaliseCandles, trimBars } from "./candles";

const MIN = 60_000;

describe("mergeCandle", () => {
  it("updates the last bar when the view's candle is the same bucket", () => {
    const bars = [makeCandle({ t: 0 }), makeCandle({ t: MIN, close: 100, count: 3 })];
    const live = makeCandle({ t: MIN, close: 104, high: 105, count: 4 });
    expect(mergeCandle(bars, live)).toBe("update");
    expect(bars).toHaveLength(2);
    expect(bars[1]).toEqual(live);
  });

  it("appends a bar when the view's candle opens a new bucket", () => {
    const bars = [makeCandle({ t: 0 }), makeCandle({ t: MIN })];
    const live = makeCandle({ t: 2 * MIN, open: 101, count: 1 });
    expect(mergeCandle(bars, live)).toBe("append");
    expect(bars.map((b) => b.t)).toEqual([0, MIN, 2 * MIN]);
  });

  it("appends after a gap of empty buckets", () => {
    const bars = [makeCandle({ t: 0 })];
    expect(mergeCandle(bars, makeCandle({ t: 5 * MIN }))).toBe("append");
    expect(bars.map((b) => b.t)).toEqual([0, 5 * MIN]);
  });

  it("ignores an out-of-order older candle", () => {
    const bars = [makeCandle({ t: 0 }), makeCandle({ t: MIN, close: 100 })];
    const before = structuredClone(bars);
    expect(mergeCandle(bars, makeCandle({ t: 0, close: 1, count: 99 }))).toBe("ignore");
    expect(bars).toEqual(before);
  });

  it("ignores a stale view of the current bucket (fewer ticks)", () => {
    const bars = [makeCandle({ t: MIN, close: 100, count: 5 })];
    expect(mergeCandle(bars, makeCandle({ t: MIN, close: 90, count: 4 }))).toBe("ignore");
    expect(bars[0]?.close).toBe(100);
  });

  it("ignores an identical candle", () => {
    const bars = [makeCandle({ t: MIN })];
    expect(mergeCandle(bars, makeCandle({ t: MIN }))).toBe("ignore");
  });

  it("starts an empty series", () => {
    const bars: ReturnType<typeof makeCandle>[] = [];
    expect(mergeCandle(bars, makeCandle({ t: MIN }))).toBe("append");
    expect(bars).toHaveLength(1);
  });
});

describe("trimBars", () => {
  it("keeps the newest max bars once past max plus slack", () => {
    const bars = Array.from({ length: 13 }, (_, i) => makeCandle({ t: i * MIN }));
    expect(trimBars(bars, 10, 2)).toBe(true);
    expect(bars).toHaveLength(10);
    expect(bars[0]?.t).toBe(3 * MIN);
  });

  it("leaves a series within max plus slack alone", () => {
    const bars = Array.from({ length: 12 }, (_, i) => makeCandle({ t: i * MIN }));
    expect(trimBars(bars, 10, 2)).toBe(false);
    expect(bars).toHaveLength(12);
  });
});

describe("normaliseCandles", () => {
  it("sorts by time and keeps one candle per bucket", () => {
    const out = normaliseCandles([
      makeCandle({ t: 2 * MIN }),
      makeCandle({ t: 0 }),
      makeCandle({ t: MIN, close: 1 }),
      makeCandle({ t: MIN, close: 2 }),
    ]);
    expect(out.map((c) => [c.t, c.close])).toEqual([
      [0, 100.5],
      [MIN, 2],
      [2 * MIN, 100.5],
    ]);
  });
});

describe("mergeHistory", () => {
  it("replaces a held bar by the fetched one with more ticks and appends a new one", () => {
    const bars = [makeCandle({ t: 0, close: 100, count: 3 })];
    const final = makeCandle({ t: 0, close: 103, volume: 6, count: 6 });
    const next = makeCandle({ t: MIN, count: 1 });
    const merged = mergeHistory(bars, [next, final]);
    expect(bars).toEqual([final, next]);
    expect(merged).toEqual({ changed: [final, next], inserted: false });
  });

  it("keeps a held bar when the fetched one holds fewer ticks (an answer older than the view)", () => {
    const live = makeCandle({ t: MIN, close: 105, count: 9 });
    const bars = [makeCandle({ t: 0 }), live];
    expect(mergeHistory(bars, [makeCandle({ t: MIN, close: 101, count: 7 })])).toEqual({ changed: [], inserted: false });
    expect(bars[1]).toBe(live);
  });

  it("inserts bars missed before the newest one", () => {
    const bars = [makeCandle({ t: 0 }), makeCandle({ t: 3 * MIN })];
    const missed = [makeCandle({ t: MIN }), makeCandle({ t: 2 * MIN })];
    expect(mergeHistory(bars, missed).inserted).toBe(true);
    expect(bars.map((b) => b.t)).toEqual([0, MIN, 2 * MIN, 3 * MIN]);
  });

  it("finds bars by time with lowerBound", () => {
    const bars = [0, MIN, 3 * MIN].map((t) => makeCandle({ t }));
    expect([-1, 0, 1, MIN, 2 * MIN, 3 * MIN, 4 * MIN].map((t) => lowerBound(bars, t))).toEqual([0, 0, 1, 1, 2, 2, 3]);
  });
});
