import { describe, expect, it } from "vitest";
import { fmtCompact, fmtNum, fmtPct, fmtPrice, fmtVolume, numberFormat } from "./format";

describe("format", () => {
  it("shows volumes compact, with their magnitude", () => {
    expect([3_913_881_620, 1_234_567, 12_345, 999.456, 0, null].map(fmtCompact)).toEqual([
      "3.91B",
      "1.23M",
      "12.3K",
      "999.46",
      "0",
      "—",
    ]);
  });

  it("signs every change, with a real minus, so up and down read without colour", () => {
    expect([1.234, -0.4, 0, -0.001, undefined].map(fmtPct)).toEqual(["+1.23%", "\u22120.40%", "0.00%", "0.00%", "—"]);
  });

  it("formats prices by magnitude and numbers with separators", () => {
    expect([62_900.5, 1.08456, 0.000123].map((p) => fmtPrice(p))).toEqual(["62,900.50", "1.0846", "0.000123"]);
    // With the symbol's tick size, its decimals: EURUSD's 0.00001 shows five, BTC's 0.01 two.
    expect(fmtPrice(1.0846, 0.00001)).toBe("1.08460");
    expect(fmtPrice(62_900.5, 0.01)).toBe("62,900.50");
    expect(fmtPrice(-2.5, 0.25)).toBe("\u22122.50");
    // Volumes: compact from 1,000, small lots with their decimals.
    expect([489_332, 0.0034, 12.5].map((v) => fmtVolume(v))).toEqual(["489K", "0.0034", "12.5000"]);
    expect(fmtNum(-1234.5, 1)).toBe("\u22121,234.5");
  });

  it("builds each number format once", () => {
    expect(numberFormat({ maximumFractionDigits: 3 })).toBe(numberFormat({ maximumFractionDigits: 3 }));
  });
});
