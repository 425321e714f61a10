import { describe, expect, it } from "vitest";
import { makeCandle } from "../test/factories";
import { chartSummary, legendFor, priceFormat, tickDecimals } from "./chartLegend";

const T = Date.UTC(2026, 11, 2, 14, 5);

describe("priceFormat", () => {
  it("takes its decimals and minimum move from the tick size", () => {
    expect(priceFormat(0.01)).toEqual({ precision: 2, minMove: 0.01 });
    expect(priceFormat(0.00001)).toEqual({ precision: 5, minMove: 0.00001 });
    expect(priceFormat(0.25)).toEqual({ precision: 2, minMove: 0.25 });
    expect(priceFormat(5)).toEqual({ precision: 0, minMove: 5 });
    expect([0.001, 0.5, 1].map(tickDecimals)).toEqual([3, 1, 0]);
  });

  it("falls back to cents for a tick size that is not one", () => {
    expect(priceFormat(0)).toEqual({ precision: 2, minMove: 0.01 });
    expect(priceFormat(Number.NaN)).toEqual({ precision: 2, minMove: 0.01 });
  });
});

describe("legendFor", () => {
  it("shows a hovered BTC bar's O/H/L/C, change vs the previous close and volume", () => {
    const previous = makeCandle({ t: T - 60_000, close: 65_000 });
    const bar = makeCandle({ t: T, open: 65_001.5, high: 65_080.25, low: 64_990, close: 65_052.37, volume: 1234.5 });
    expect(legendFor(bar, previous, priceFormat(0.01))).toEqual({
      time: "2026-12-02 14:05 UTC",
      open: "65001.50",
      high: "65080.25",
      low: "64990.00",
      close: "65052.37",
      volume: "1.23K",
      change: "+52.37 (+0.08%)",
      direction: "up",
    });
  });

  it("shows EURUSD with five decimals and a fall as a minus", () => {
    const previous = makeCandle({ close: 1.08345 });
    const bar = makeCandle({ open: 1.08344, high: 1.0835, low: 1.0832, close: 1.08321, volume: 2_500_000 });
    const legend = legendFor(bar, previous, priceFormat(0.00001));
    expect([legend.open, legend.high, legend.low, legend.close]).toEqual(["1.08344", "1.08350", "1.08320", "1.08321"]);
    expect(legend.change).toBe("−0.00024 (−0.02%)");
    expect(legend.volume).toBe("2.5M");
    expect(legend.direction).toBe("down");
  });

  it("measures the first bar's change from its open, and float dust as no change", () => {
    const first = legendFor(makeCandle({ open: 0.1, close: 0.1 + 0.2 - 0.2 }), null, priceFormat(0.01));
    expect(first.change).toBe("0.00 (0.00%)");
    expect(first.direction).toBe("flat");
  });
});

describe("chartSummary", () => {
  it("tells a screen reader the bars held, the span's change, its range and the last close", () => {
    const t0 = Date.UTC(2026, 11, 2, 13, 2);
    const bars = [
      makeCandle({ t: t0, open: 100, high: 104, low: 99, close: 103 }),
      makeCandle({ t: t0 + 60_000, open: 103, high: 106, low: 95.5, close: 105 }),
    ];
    expect(chartSummary(bars, "1m", priceFormat(0.01))).toBe(
      "2 1m bars from 13:02 to 13:03 UTC: last close 105.00, +5.00% over them, low 95.50, high 106.00.",
    );
    expect(chartSummary([makeCandle({ t: t0, open: 1.1, high: 1.1, low: 1.09, close: 1.095 })], "5m", priceFormat(0.00001)))
      .toBe("1 5m bar from 13:02 to 13:02 UTC: last close 1.09500, −0.45% over them, low 1.09000, high 1.10000.");
    expect(chartSummary([], "1m", priceFormat(0.01))).toBe("No candles yet.");
  });
});
