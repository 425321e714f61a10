import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ManualFrames } from "../test/fakes";
import { throttledFrame } from "./throttledFrame";

describe("throttledFrame", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("runs in the next frame when idle, and no sooner than the gap after the last run", () => {
    const frames = new ManualFrames();
    const request = throttledFrame(250, frames.request, () => Date.now());
    const ran: number[] = [];
    request(() => ran.push(Date.now()));
    expect(frames.waiting).toBe(1); // idle: straight to the next frame
    frames.frame();
    request(() => ran.push(Date.now()));
    expect(frames.waiting).toBe(0); // waits out the gap first
    vi.advanceTimersByTime(249);
    expect(frames.waiting).toBe(0);
    vi.advanceTimersByTime(1);
    frames.frame();
    expect(ran.length).toBe(2);
    expect((ran[1] ?? 0) - (ran[0] ?? 0)).toBe(250);
  });
});
