import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeAlert, makeSnapshot, makeView } from "../test/factories";
import { FakeEventSource, ManualFrames, envelope, fakeApi } from "../test/fakes";
import { Dashboard } from "./dashboard";

const CONFIG = { apiBaseUrl: "http://gw:8001/api", streamUrl: "http://gw:8001/stream", public: false };

function fakeDashboardApi() {
  return fakeApi(CONFIG.apiBaseUrl, {
    "/symbols/views": {
      symbols: [{ symbol: "BTCUSDT", tick_size: 0.01, view: makeView({ version: 1, latency_ms: 7 }), session: { start: 1_795_564_800_000, open: 80 } }],
    },
    "/rttm/metrics": makeSnapshot(),
    "/rttm/alerts": { firing: [], history: [] },
    "/rttm/dlq?limit=20": { events: [] },
    "/rttm/stuck?limit=20": { count: 0, threshold_s: 30, trades: [] },
    "/system": { queue: { queued: 4, started: 1, failed: 0, scheduled: 0 }, flush_backlog: 2, ingest: { accepted_total: 10 } },
  });
}

const settle = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
};

describe("Dashboard", () => {
  let dashboard: Dashboard;
  let frames: ManualFrames;
  let api: ReturnType<typeof fakeDashboardApi>;

  beforeEach(async () => {
    FakeEventSource.reset();
    frames = new ManualFrames();
    api = fakeDashboardApi();
    dashboard = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: api.fetchFn, requestFrame: frames.request });
    dashboard.start();
    await settle();
  });

  afterEach(() => dashboard.stop());

  it("loads state from the API in one call for every symbol and opens one conflated stream without ticks", () => {
    expect(api.asked).toEqual(expect.arrayContaining(["/symbols/views", "/rttm/metrics", "/rttm/alerts", "/system"]));
    expect(api.asked.filter((p) => p.startsWith("/symbols"))).toEqual(["/symbols/views"]);
    expect(dashboard.market.symbols()).toEqual(["BTCUSDT"]);
    expect(dashboard.market.row("BTCUSDT")?.sessionChangePct).toBeCloseTo(25);
    expect(FakeEventSource.last().params.get("conflate")).toBe("250ms");
    expect(dashboard.pipeline.snapshot?.tps.current).toBe(12.5);
    expect(dashboard.system.status?.queue.queued).toBe(4);
    const types = FakeEventSource.last().params.get("types")?.split(",");
    expect(types).not.toContain("tick.received");
    expect(types).not.toContain("ticks.merged");
    expect(types).toContain("symbol.updated");
  });

  it("opens the tape's stream for a symbol selected automatically, not only for a click", async () => {
    const fresh = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: api.fetchFn, requestFrame: frames.request });
    fresh.setTapeActive(true); // the tape is on screen before any symbol is known
    fresh.start();
    await settle();
    expect(fresh.market.selected).toBe("BTCUSDT");
    const tape = FakeEventSource.last();
    expect(tape.params.get("types")).toBe("ticks.merged");
    expect(tape.params.get("symbols")).toBe("BTCUSDT");
    fresh.stop();
  });

  it("routes stream events to the stores and renders once per frame", () => {
    const es = FakeEventSource.last();
    es.open();
    const rows = vi.fn();
    dashboard.market.rowChanged.subscribe("BTCUSDT", rows);
    for (let v = 2; v <= 50; v += 1) {
      const view = makeView({ version: v, price: 100 + v, latency_ms: v });
      es.emit("symbol.updated", envelope("symbol.updated", `${v}-0`, { symbol: "BTCUSDT", view, ts: v }), `${v}-0`);
    }
    es.emit("alert.fired", envelope("alert.fired", "60-0", makeAlert({ rule: "dlq_per_min" })), "60-0");
    frames.frame();
    expect(rows).toHaveBeenCalledTimes(1);
    expect(dashboard.market.row("BTCUSDT")?.price).toBe(150);
    expect(dashboard.system.latencyMs).toBe(50);
    expect(dashboard.system.sseState).toBe("live");
    expect(dashboard.pipeline.board.firingCount()).toBe(1);
  });

  it("refetches its state on reset", async () => {
    const es = FakeEventSource.last();
    es.open();
    const before = api.asked.filter((p) => p === "/symbols/views").length;
    es.emit("reset", JSON.stringify({ reason: "history_trimmed" }));
    await settle();
    expect(api.asked.filter((p) => p === "/symbols/views").length).toBe(before + 1);
    expect(api.asked.filter((p) => p === "/symbols/BTCUSDT")).toEqual([]);
    expect(dashboard.reloadSeq).toBe(1);
  });

  it("asks for the snapshot once when several new symbols arrive together", async () => {
    const es = FakeEventSource.last();
    es.open();
    const before = api.asked.length;
    for (const symbol of ["AAA", "BBB", "CCC"]) {
      const view = makeView({ symbol, version: 1, candles: { "1m": null, "5m": null, "15m": null } });
      es.emit("symbol.updated", envelope("symbol.updated", "9-0", { symbol, view, ts: 1 }), "9-0");
    }
    await settle();
    expect(api.asked.slice(before)).toEqual(["/symbols/views"]);
  });

  it("dims prices while the stream is not live, and asks its queries again once it is back", async () => {
    const es = FakeEventSource.last();
    es.open();
    dashboard.market.applyView(makeView({ version: 2, ts: Date.now() }));
    expect(dashboard.market.row("BTCUSDT")?.stale).toBe(false);
    const systemBefore = api.asked.filter((p) => p === "/system").length;
    es.fail();
    expect(dashboard.market.row("BTCUSDT")?.stale).toBe(true);
    await vi.waitFor(() => expect(FakeEventSource.last()).not.toBe(es), { timeout: 3_000 }); // after its backoff
    FakeEventSource.last().open();
    await settle();
    expect(dashboard.market.row("BTCUSDT")?.stale).toBe(false);
    expect(api.asked.filter((p) => p === "/system").length).toBe(systemBefore + 1);
  });

  it("opens a merged-ticks stream for the selected symbol only while the tape is shown, a row per event", () => {
    const count = FakeEventSource.instances.length;
    dashboard.setTapeActive(true);
    const tape = FakeEventSource.last();
    expect(FakeEventSource.instances.length).toBe(count + 1);
    expect(tape.params.get("types")).toBe("ticks.merged");
    expect(tape.params.get("symbols")).toBe("BTCUSDT");
    tape.open();
    const merged = { symbol: "BTCUSDT", open: 1, high: 3, low: 1, close: 2, volume: 7, count: 4, first_ts: 10, last_ts: 20, last_event_id: "e-9" };
    tape.emit("ticks.merged", envelope("ticks.merged", "70-0", merged, "BTCUSDT"), "70-0");
    expect(dashboard.tape.ticks()[0]).toEqual({ event_id: "e-9", symbol: "BTCUSDT", price: 2, volume: 7, ts: 20, count: 4 });
    dashboard.setTapeMode("all");
    expect(tape.closed).toBe(true);
    expect(FakeEventSource.last().params.has("symbols")).toBe(false);
    dashboard.setTapeActive(false);
    expect(FakeEventSource.last().closed).toBe(true);
  });

  it("shows an error when the API is unreachable", async () => {
    const down = new Dashboard(CONFIG, {
      EventSource: FakeEventSource,
      fetch: async () => {
        throw new TypeError("Failed to fetch");
      },
      requestFrame: frames.request,
    });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    down.start();
    await settle();
    down.stop();
    warn.mockRestore();
    expect(down.apiError).toMatch(/API unreachable/);
  });
});
