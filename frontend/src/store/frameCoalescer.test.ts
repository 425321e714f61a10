import { describe, expect, it, vi } from "vitest";
import { ManualFrames } from "../test/fakes";
import { FrameCoalescer } from "./frameCoalescer";
import { KeyedSignal, Signal } from "./signal";

describe("FrameCoalescer", () => {
  it("runs a task scheduled many times once, in one frame", () => {
    const frames = new ManualFrames();
    const coalescer = new FrameCoalescer(frames.request);
    const flush = vi.fn();
    for (let i = 0; i < 1000; i += 1) coalescer.schedule(flush);
    expect(frames.requested).toBe(1);
    expect(flush).not.toHaveBeenCalled();
    frames.frame();
    expect(flush).toHaveBeenCalledTimes(1);
  });

  it("runs different tasks in the same frame", () => {
    const frames = new ManualFrames();
    const coalescer = new FrameCoalescer(frames.request);
    const a = vi.fn();
    const b = vi.fn();
    coalescer.schedule(a);
    coalescer.schedule(b);
    coalescer.schedule(a);
    frames.frame();
    expect([a.mock.calls.length, b.mock.calls.length, frames.requested]).toEqual([1, 1, 1]);
  });

  it("requests a new frame for work scheduled after a flush", () => {
    const frames = new ManualFrames();
    const coalescer = new FrameCoalescer(frames.request);
    const flush = vi.fn();
    coalescer.schedule(flush);
    frames.frame();
    coalescer.schedule(flush);
    coalescer.schedule(flush);
    expect(frames.requested).toBe(2);
    frames.frame();
    expect(flush).toHaveBeenCalledTimes(2);
  });

  it("runs the other tasks of a frame when one throws", () => {
    const frames = new ManualFrames();
    const coalescer = new FrameCoalescer(frames.request);
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const after = vi.fn();
    coalescer.schedule(() => {
      throw new Error("boom");
    });
    coalescer.schedule(after);
    frames.frame();
    expect(after).toHaveBeenCalledTimes(1);
    spy.mockRestore();
  });
});

describe("Signal", () => {
  it("notifies listeners once per frame however often it is marked dirty", () => {
    const frames = new ManualFrames();
    const signal = new Signal(new FrameCoalescer(frames.request));
    const listener = vi.fn();
    signal.subscribe(listener);
    for (let i = 0; i < 500; i += 1) signal.markDirty();
    expect(signal.getVersion()).toBe(0);
    frames.frame();
    expect(listener).toHaveBeenCalledTimes(1);
    expect(signal.getVersion()).toBe(1);
  });

  it("stops notifying after unsubscribe", () => {
    const frames = new ManualFrames();
    const signal = new Signal(new FrameCoalescer(frames.request));
    const listener = vi.fn();
    const unsubscribe = signal.subscribe(listener);
    unsubscribe();
    signal.markDirty();
    frames.frame();
    expect(listener).not.toHaveBeenCalled();
  });
});

describe("KeyedSignal", () => {
  it("notifies only the keys that changed, once per frame", () => {
    const frames = new ManualFrames();
    const signal = new KeyedSignal(new FrameCoalescer(frames.request));
    const btc = vi.fn();
    const eth = vi.fn();
    signal.subscribe("BTC", btc);
    signal.subscribe("ETH", eth);
    signal.markDirty("BTC");
    signal.markDirty("BTC");
    frames.frame();
    expect(btc).toHaveBeenCalledTimes(1);
    expect(eth).not.toHaveBeenCalled();
    expect([signal.getVersion("BTC"), signal.getVersion("ETH")]).toEqual([1, 0]);
    expect(frames.requested).toBe(1);
  });
});
