import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeAlert, makeSnapshot, makeView } from "../test/factories";
import { FakeEventSource, ManualFrames, envelope } from "../test/fakes";
import { Dashboard } from "./dashboard";

const CONFIG = { apiBaseUrl: "http://gw:8001/api", streamUrl: "http://gw:8001/stream", public: false };

function fakeApi() {
  const asked: string[] = [];
  const routes: Record<string, unknown> = {
    "/symbols": { symbols: [{ symbol: "BTCUSDT", price: 100, ts: 1, version: 1, tick_size: 0.01 }] },
    "/symbols/BTCUSDT": makeView({ version: 1, latency_ms: 7 }),
    "/rttm/metrics": makeSnapshot(),
    "/rttm/alerts": { firing: [], history: [] },
    "/rttm/dlq?limit=20": { events: [] },
    "/rttm/stuck?limit=20": { count: 0, threshold_s: 30, trades: [] },
    "/system": { queue: { queued: 4, started: 1, failed: 0, scheduled: 0 }, flush_backlog: 2, ingest: { accepted_total: 10 } },
  };
  const fetchFn = async (url: string) => {
    const path = url.replace(CONFIG.apiBaseUrl, "");
    asked.push(path);
    return path in routes ? new Response(JSON.stringify(routes[path])) : new Response("{}", { status: 404 });
  };
  return { asked, fetchFn };
}

const settle = async () => {
  for (let i = 0; i < 10; i += 1) await Promise.resolve();
  await new Promise((resolve) => setTimeout(resolve, 0));
};

describe("Dashboard", () => {
  let dashboard: Dashboard;
  let frames: ManualFrames;
  let api: ReturnType<typeof fakeApi>;

  beforeEach(async () => {
    FakeEventSource.reset();
    frames = new ManualFrames();
    api = fakeApi();
    dashboard = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: api.fetchFn, requestFrame: frames.request });
    dashboard.start();
    await settle();
  });

  afterEach(() => dashboard.stop());

  it("loads state from the API and opens one stream without ticks", () => {
    expect(api.asked).toEqual(expect.arrayContaining(["/symbols", "/symbols/BTCUSDT", "/rttm/metrics", "/rttm/alerts", "/system"]));
    expect(dashboard.market.symbols()).toEqual(["BTCUSDT"]);
    expect(dashboard.pipeline.snapshot?.tps.current).toBe(12.5);
    expect(dashboard.system.status?.queue.queued).toBe(4);
    const types = FakeEventSource.last().params.get("types")?.split(",");
    expect(types).not.toContain("tick.received");
    expect(types).toContain("symbol.updated");
  });

  it("opens the tape's stream for a symbol selected automatically, not only for a click", async () => {
    const fresh = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: api.fetchFn, requestFrame: frames.request });
    fresh.setTapeActive(true); // the tape is on screen before any symbol is known
    fresh.start();
    await settle();
    expect(fresh.market.selected).toBe("BTCUSDT");
    const tape = FakeEventSource.last();
    expect(tape.params.get("types")).toBe("tick.received");
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
    const before = api.asked.filter((p) => p === "/symbols").length;
    es.emit("reset", JSON.stringify({ reason: "history_trimmed" }));
    await settle();
    expect(api.asked.filter((p) => p === "/symbols").length).toBe(before + 1);
    expect(dashboard.reloadSeq).toBe(1);
  });

  it("opens a tick stream for the selected symbol only while the tape is shown", () => {
    const count = FakeEventSource.instances.length;
    dashboard.setTapeActive(true);
    const tape = FakeEventSource.last();
    expect(FakeEventSource.instances.length).toBe(count + 1);
    expect(tape.params.get("types")).toBe("tick.received");
    expect(tape.params.get("symbols")).toBe("BTCUSDT");
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
