import { describe, expect, it } from "vitest";
import { makeTick } from "../test/factories";
import { ManualFrames } from "../test/fakes";
import { FrameCoalescer } from "../store/frameCoalescer";
import { Ring } from "../util/ring";
import { TapeStore } from "./tapeStore";

function tape(size = 50) {
  return new TapeStore(new FrameCoalescer(new ManualFrames().request), size);
}

describe("Ring", () => {
  it("keeps the newest items up to its capacity", () => {
    const ring = new Ring<number>(3);
    for (let i = 1; i <= 5; i += 1) ring.push(i);
    expect(ring.size).toBe(3);
    expect(ring.newestFirst()).toEqual([5, 4, 3]);
    expect(ring.newestFirst(2)).toEqual([5, 4]);
  });

  it("returns the item it pushed out", () => {
    const ring = new Ring<string>(2);
    expect(ring.push("a")).toBeUndefined();
    expect(ring.push("b")).toBeUndefined();
    expect(ring.push("c")).toBe("a");
  });

  it("rejects a capacity below one", () => {
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});

describe("TapeStore", () => {
  it("stays bounded: 10,000 ticks leave the newest 50, newest first", () => {
    const store = tape(50);
    for (let i = 0; i < 10_000; i += 1) store.push(makeTick({ event_id: `e-${i}`, price: i }));
    const ticks = store.ticks();
    expect(ticks).toHaveLength(50);
    expect(ticks[0]?.event_id).toBe("e-9999");
    expect(ticks[49]?.event_id).toBe("e-9950");
  });

  it("shows a tick seen twice once", () => {
    const store = tape();
    store.push(makeTick({ event_id: "x" }));
    store.push(makeTick({ event_id: "x" }));
    expect(store.size).toBe(1);
  });

  it("accepts an evicted id again (the id set is bounded too)", () => {
    const store = tape(2);
    store.push(makeTick({ event_id: "a" }));
    store.push(makeTick({ event_id: "b" }));
    store.push(makeTick({ event_id: "c" }));
    store.push(makeTick({ event_id: "a" }));
    expect(store.ticks().map((t) => t.event_id)).toEqual(["a", "c"]);
  });

  it("keeps only the filtered symbol and starts empty on a filter change", () => {
    const store = tape();
    store.push(makeTick({ event_id: "1", symbol: "BTCUSDT" }));
    store.setFilter("ETHUSDT");
    expect(store.size).toBe(0);
    store.push(makeTick({ event_id: "2", symbol: "BTCUSDT" }));
    store.push(makeTick({ event_id: "3", symbol: "ETHUSDT" }));
    expect(store.ticks().map((t) => t.event_id)).toEqual(["3"]);
  });
});
