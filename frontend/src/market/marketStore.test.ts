import { describe, expect, it, vi } from "vitest";
import type { Snapshot } from "../api/types";
import { makeCandle, makeView } from "../test/factories";
import { ManualFrames } from "../test/fakes";
import { FrameCoalescer } from "../store/frameCoalescer";
import { DAY_MS, FLASH_GAP_MS, MarketStore, STALE_AFTER_MS } from "./marketStore";

const DAY = 1_795_564_800_000; // a UTC midnight; makeView's ts is 284 s after it
const TS = makeView().ts;

function store(now = () => TS) {
  const frames = new ManualFrames();
  return { frames, market: new MarketStore(new FrameCoalescer(frames.request), () => {}, now) };
}

function snapshot(...entries: Snapshot["symbols"]): Snapshot {
  return { symbols: entries };
}

describe("MarketStore", () => {
  it("applies newer views and ignores older versions", () => {
    const { market } = store();
    expect(market.applyView(makeView({ version: 2, price: 101 }))).not.toBe("ignored");
    expect(market.applyView(makeView({ version: 1, price: 99 }))).toBe("ignored");
    expect(market.applyView(makeView({ version: 2, price: 98 }))).toBe("ignored");
    expect(market.row("BTCUSDT")?.price).toBe(101);
  });

  it("records the direction of each price change", () => {
    const { market } = store();
    market.applyView(makeView({ version: 1, price: 100 }));
    market.applyView(makeView({ version: 2, price: 101 }));
    expect(market.row("BTCUSDT")?.direction).toBe("up");
    market.applyView(makeView({ version: 3, price: 100.5 }));
    expect(market.row("BTCUSDT")?.direction).toBe("down");
  });

  it("flashes on a change of the shown price, at most once per gap, so fast rows are not lit for good", () => {
    let now = TS;
    const { market } = store(() => now);
    market.applyView(makeView({ version: 1, price: 62_000 }));
    market.applyView(makeView({ version: 2, price: 62_000.001 })); // the same at 2 decimals: no flash
    expect(market.row("BTCUSDT")?.flashSeq).toBe(0);
    market.applyView(makeView({ version: 3, price: 62_001 }));
    expect(market.row("BTCUSDT")?.flashSeq).toBe(1);
    for (let v = 4; v < 50; v += 1) {
      now += 20; // 50 changes a second
      market.applyView(makeView({ version: v, price: 62_000 + v }));
    }
    expect(market.row("BTCUSDT")?.flashSeq).toBe(1);
    now += FLASH_GAP_MS;
    market.applyView(makeView({ version: 60, price: 61_000 }));
    expect(market.row("BTCUSDT")).toMatchObject({ flashSeq: 2, direction: "down" });
  });

  it("notifies only the changed symbol's row, once per frame", () => {
    const { market, frames } = store();
    market.applyView(makeView({ symbol: "BTCUSDT", version: 1 }));
    market.applyView(makeView({ symbol: "ETHUSDT", version: 1 }));
    frames.frame();
    const btc = vi.fn();
    const eth = vi.fn();
    const list = vi.fn();
    market.rowChanged.subscribe("BTCUSDT", btc);
    market.rowChanged.subscribe("ETHUSDT", eth);
    market.list.subscribe(list);
    for (let v = 2; v < 100; v += 1) market.applyView(makeView({ symbol: "BTCUSDT", version: v, price: 100 + v }));
    frames.frame();
    expect([btc.mock.calls.length, eth.mock.calls.length, list.mock.calls.length]).toEqual([1, 0, 0]);
  });

  it("loads every symbol from one snapshot, sorted, and selects the first", () => {
    const { market } = store();
    market.loadSnapshot(
      snapshot(
        { symbol: "SOLUSDT", tick_size: 0.001, view: makeView({ symbol: "SOLUSDT", price: 150 }), session: { start: DAY, open: 100 } },
        { symbol: "BTCUSDT", tick_size: 0.01, view: null, session: null },
      ),
    );
    expect(market.symbols()).toEqual(["BTCUSDT", "SOLUSDT"]);
    expect(market.selected).toBe("BTCUSDT");
    expect(market.row("SOLUSDT")).toMatchObject({ price: 150, sessionChangePct: 50 });
    expect(market.view("SOLUSDT")?.price).toBe(150);
  });

  it("does not let a snapshot overwrite a newer view", () => {
    const { market } = store();
    market.applyView(makeView({ version: 5, price: 200 }));
    market.loadSnapshot(snapshot({ symbol: "BTCUSDT", tick_size: 0.01, view: makeView({ version: 4, price: 150 }), session: null }));
    expect(market.row("BTCUSDT")?.price).toBe(200);
  });

  it("changes vs the day's open, and takes a new day's open from its first 15m candle", () => {
    const { market } = store();
    market.loadSnapshot(snapshot({ symbol: "BTCUSDT", tick_size: 0.01, view: makeView({ price: 110 }), session: { start: DAY, open: 100 } }));
    expect(market.row("BTCUSDT")?.sessionChangePct).toBeCloseTo(10);
    market.applyView(makeView({ version: 2, price: 95 }));
    expect(market.row("BTCUSDT")?.sessionChangePct).toBeCloseTo(-5);
    const next = DAY + DAY_MS;
    const candles = { "1m": null, "5m": null, "15m": makeCandle({ t: next, open: 90 }) };
    expect(market.applyView(makeView({ version: 3, price: 99, ts: next + 5_000, candles }))).toBe("applied");
    expect(market.row("BTCUSDT")).toMatchObject({ session: { start: next, open: 90 } });
    expect(market.row("BTCUSDT")?.sessionChangePct).toBeCloseTo(10);
  });

  it("asks for the snapshot when a view does not tell its day's open", () => {
    const { market } = store();
    const candles = { "1m": null, "5m": null, "15m": makeCandle({ t: DAY + 900_000 }) }; // not the day's first
    expect(market.applyView(makeView({ symbol: "NEWUSDT", ts: DAY + 901_000, candles }))).toBe("no-session");
    expect(market.row("NEWUSDT")?.sessionChangePct).toBeNull();
    expect(market.applyView(makeView({ symbol: "NEWUSDT", version: 2, ts: DAY + 902_000, candles }))).toBe("applied");
  });

  it("is stale while the stream is not live and when the last tick is old", () => {
    let now = TS;
    const { market, frames } = store(() => now);
    market.applyView(makeView());
    expect(market.row("BTCUSDT")?.stale).toBe(true); // not live yet
    market.setLive(true);
    expect(market.row("BTCUSDT")?.stale).toBe(false);
    frames.frame();
    const row = vi.fn();
    market.rowChanged.subscribe("BTCUSDT", row);
    now += STALE_AFTER_MS + 1;
    market.checkStale();
    market.checkStale();
    frames.frame();
    expect(market.row("BTCUSDT")?.stale).toBe(true);
    expect(row).toHaveBeenCalledTimes(1); // only on the flip
    market.applyView(makeView({ version: 2, ts: now }));
    expect(market.row("BTCUSDT")?.stale).toBe(false);
    market.setLive(false);
    expect(market.row("BTCUSDT")?.stale).toBe(true);
  });
});
