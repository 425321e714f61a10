import { describe, expect, it, vi } from "vitest";
import { makeView } from "../test/factories";
import { ManualFrames } from "../test/fakes";
import { FrameCoalescer } from "../store/frameCoalescer";
import { MarketStore } from "./marketStore";

function store() {
  const frames = new ManualFrames();
  return { frames, market: new MarketStore(new FrameCoalescer(frames.request)) };
}

describe("MarketStore", () => {
  it("applies newer views and ignores older versions", () => {
    const { market } = store();
    expect(market.applyView(makeView({ version: 2, price: 101 }))).toBe(true);
    expect(market.applyView(makeView({ version: 1, price: 99 }))).toBe(false);
    expect(market.applyView(makeView({ version: 2, price: 98 }))).toBe(false);
    expect(market.row("BTCUSDT")?.price).toBe(101);
  });

  it("records the direction of each price change", () => {
    const { market } = store();
    market.applyView(makeView({ version: 1, price: 100 }));
    market.applyView(makeView({ version: 2, price: 101 }));
    expect(market.row("BTCUSDT")).toMatchObject({ direction: "up", changeSeq: 1 });
    market.applyView(makeView({ version: 3, price: 100.5 }));
    expect(market.row("BTCUSDT")).toMatchObject({ direction: "down", changeSeq: 2 });
    market.applyView(makeView({ version: 4, price: 100.5 }));
    expect(market.row("BTCUSDT")?.changeSeq).toBe(2);
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

  it("lists symbols sorted and selects the first one", () => {
    const { market } = store();
    market.loadSummaries([
      { symbol: "SOLUSDT", price: 1, ts: 1, version: 1, tick_size: 0.001 },
      { symbol: "BTCUSDT", price: null, ts: null, version: null, tick_size: 0.01 },
    ]);
    expect(market.symbols()).toEqual(["BTCUSDT", "SOLUSDT"]);
    expect(market.selected).toBe("BTCUSDT");
    expect(market.row("SOLUSDT")?.price).toBe(1);
  });

  it("does not let a summary overwrite a newer view", () => {
    const { market } = store();
    market.applyView(makeView({ version: 5, price: 200 }));
    market.loadSummaries([{ symbol: "BTCUSDT", price: 150, ts: 1, version: 4, tick_size: 0.01 }]);
    expect(market.row("BTCUSDT")?.price).toBe(200);
  });
});
