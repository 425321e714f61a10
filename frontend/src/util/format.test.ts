import { describe, expect, it } from "vitest";
import { fmtCompact, fmtNum, fmtPct, fmtPrice, numberFormat } from "./format";

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
    expect([62_900.5, 1.08456, 0.000123].map(fmtPrice)).toEqual(["62,900.50", "1.0846", "0.000123"]);
    expect(fmtNum(-1234.5, 1)).toBe("\u22121,234.5");
  });

  it("builds each number format once", () => {
    expect(numberFormat({ maximumFractionDigits: 3 })).toBe(numberFormat({ maximumFractionDigits: 3 }));
  });
});
