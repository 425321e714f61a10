import { describe, expect, it } from "vitest";
import { ManualTimers } from "../test/fakes";
import { Poller } from "./poller";

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("Poller", () => {
  it("runs at once, then every interval after each run finishes", async () => {
    const timers = new ManualTimers();
    let runs = 0;
    const poller = new Poller(async () => void (runs += 1), 2000, timers);
    poller.start();
    await settle();
    expect(runs).toBe(1);
    expect(timers.delays).toEqual([2000]);
    timers.runAll();
    await settle();
    expect(runs).toBe(2);
    poller.stop();
    expect(timers.pending.size).toBe(0);
  });

  it("keeps polling after a failed run", async () => {
    const timers = new ManualTimers();
    const poller = new Poller(async () => {
      throw new Error("down");
    }, 1000, timers);
    const warn = console.warn;
    console.warn = () => {};
    poller.start();
    await settle();
    console.warn = warn;
    expect(timers.pending.size).toBe(1);
    poller.stop();
  });
});
