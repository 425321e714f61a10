import { describe, expect, it } from "vitest";
import { sparklinePath, sparklineScale } from "./sparkline";

describe("sparkline", () => {
  it("maps points into the box, y up", () => {
    expect(sparklinePath([[0, 0], [5, 5], [10, 10]], 100, 10)).toBe("M0.0 10.0 L50.0 5.0 L100.0 0.0");
  });

  it("breaks the line at nulls", () => {
    expect(sparklinePath([[0, 1], [1, null], [2, 1]], 10, 10, { minY: 0, maxY: 2 })).toBe("M0.0 5.0 M10.0 5.0");
  });

  it("handles empty and flat series", () => {
    expect(sparklinePath([], 10, 10)).toBe("");
    expect(sparklineScale([[0, 3], [1, 3]])).toEqual({ minY: 0, maxY: 3 });
    expect(sparklineScale([[0, null]])).toEqual({ minY: 0, maxY: 1 });
  });
});
