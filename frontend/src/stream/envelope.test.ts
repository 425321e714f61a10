import { describe, expect, it } from "vitest";
import { makeAlert, makeSnapshot, makeTick, makeView } from "../test/factories";
import { envelope } from "../test/fakes";
import { parseControl, parseEnvelope } from "./envelope";

describe("parseEnvelope", () => {
  it("parses a tick.received envelope with its symbol", () => {
    const tick = makeTick({ symbol: "ETHUSDT" });
    const env = parseEnvelope(envelope("tick.received", "1795565084139-0", tick, "ETHUSDT"), "tick.received");
    expect(env).toEqual({ id: "1795565084139-0", type: "tick.received", symbol: "ETHUSDT", data: tick });
  });

  it("takes the symbol from the tick when the envelope has none", () => {
    const env = parseEnvelope(envelope("tick.received", "1-0", makeTick({ symbol: "SOLUSDT" })));
    expect(env?.symbol).toBe("SOLUSDT");
  });

  it("parses ticks.merged, and drops one without its close, time or count", () => {
    const merged = { symbol: "BTCUSDT", open: 1, high: 3, low: 1, close: 2, volume: 7, count: 4, first_ts: 10, last_ts: 20, last_event_id: "e" };
    expect(parseEnvelope(envelope("ticks.merged", "3-0", merged, "BTCUSDT"), "ticks.merged")).toEqual({
      id: "3-0",
      type: "ticks.merged",
      symbol: "BTCUSDT",
      data: merged,
    });
    for (const field of ["close", "last_ts", "count"]) {
      const broken: Record<string, unknown> = { ...merged };
      delete broken[field];
      expect(parseEnvelope(envelope("ticks.merged", "3-1", broken))).toBeNull();
    }
  });

  it("parses symbol.updated with its view", () => {
    const view = makeView({ version: 7 });
    const env = parseEnvelope(envelope("symbol.updated", "5-1", { symbol: "BTCUSDT", view, ts: 123 }, "BTCUSDT"));
    expect(env?.type).toBe("symbol.updated");
    expect(env?.type === "symbol.updated" && env.data.view.version).toBe(7);
    expect(env?.type === "symbol.updated" && env.data.ts).toBe(123);
  });

  it("parses rttm.metrics and alert transitions", () => {
    expect(parseEnvelope(envelope("rttm.metrics", "9-0", makeSnapshot()))?.type).toBe("rttm.metrics");
    expect(parseEnvelope(envelope("alert.fired", "9-1", makeAlert({ state: "fired" })))?.type).toBe("alert.fired");
    expect(parseEnvelope(envelope("alert.resolved", "9-2", makeAlert({ state: "resolved" })))?.type).toBe("alert.resolved");
  });

  it("ignores unknown types", () => {
    expect(parseEnvelope(envelope("trade.exploded", "1-0", { a: 1 }))).toBeNull();
  });

  it("ignores bad JSON and non-envelopes", () => {
    expect(parseEnvelope("{not json")).toBeNull();
    expect(parseEnvelope("")).toBeNull();
    expect(parseEnvelope("[1,2]")).toBeNull();
    expect(parseEnvelope('"tick.received"')).toBeNull();
    expect(parseEnvelope(JSON.stringify({ type: "tick.received", data: makeTick() }))).toBeNull(); // no id
    expect(parseEnvelope(JSON.stringify({ id: "nope", type: "tick.received", data: makeTick() }))).toBeNull();
    expect(parseEnvelope(JSON.stringify({ id: "1-0", type: "tick.received", data: null }))).toBeNull();
  });

  it("ignores data without the fields its type needs", () => {
    expect(parseEnvelope(envelope("tick.received", "1-0", { symbol: "X" }))).toBeNull();
    expect(parseEnvelope(envelope("symbol.updated", "1-0", { symbol: "X", view: { symbol: "X" } }))).toBeNull();
    expect(parseEnvelope(envelope("rttm.metrics", "1-0", { computed_at: "soon" }))).toBeNull();
    expect(parseEnvelope(envelope("alert.fired", "1-0", { value: 3 }))).toBeNull();
  });

  it("ignores an envelope whose type differs from the SSE event name", () => {
    expect(parseEnvelope(envelope("tick.received", "1-0", makeTick()), "symbol.updated")).toBeNull();
    expect(parseEnvelope(envelope("tick.received", "1-0", makeTick()), "message")?.type).toBe("tick.received");
  });
});

describe("parseControl", () => {
  it("reads reason, detail and last_event_id", () => {
    const raw = JSON.stringify({ reason: "slow_client", detail: "too slow", last_event_id: "12-3" });
    expect(parseControl("overflow", raw)).toEqual({
      type: "overflow",
      reason: "slow_client",
      detail: "too slow",
      lastEventId: "12-3",
    });
  });

  it("tolerates a bad body", () => {
    expect(parseControl("reset", "garbage")).toEqual({ type: "reset", reason: null, detail: null, lastEventId: null });
  });
});
