import { describe, expect, it } from "vitest";
import type { SystemStatus } from "../api/types";
import { RateMeter } from "./rate";
import { makeSystemStatus } from "../test/factories";
import { tickTotal } from "./systemStore";

describe("RateMeter", () => {
  it("has no rate until two samples", () => {
    const meter = new RateMeter();
    expect(meter.update(1000, 0)).toBeNull();
    expect(meter.rate).toBeNull();
  });

  it("divides the counter's growth by the seconds between polls", () => {
    const meter = new RateMeter();
    meter.update(1000, 10_000);
    expect(meter.update(1500, 12_000)).toBe(250);
    expect(meter.update(1500, 14_000)).toBe(0);
    expect(meter.update(2300, 18_000)).toBe(200);
  });

  it("starts over when the counter goes back (API restarted)", () => {
    const meter = new RateMeter();
    meter.update(5000, 0);
    meter.update(6000, 2000);
    expect(meter.update(10, 4000)).toBeNull();
    expect(meter.update(410, 6000)).toBe(200);
  });

  it("keeps the last rate for a sample with no time elapsed", () => {
    const meter = new RateMeter();
    meter.update(0, 1000);
    meter.update(100, 2000);
    expect(meter.update(150, 2000)).toBe(100);
  });
});

describe("tickTotal", () => {
  const status = (ingest: SystemStatus["ingest"]): SystemStatus => makeSystemStatus({ ingest });

  it("counts ticks when the API breaks the total down by kind", () => {
    expect(tickTotal(status({ accepted_total: 900, accepted_by_kind: { tick: 700, trade_event: 200 } }))).toBe(700);
  });

  it("falls back to the total", () => {
    expect(tickTotal(status({ accepted_total: 900, accepted_by_kind: {} }))).toBe(900);
  });
});
