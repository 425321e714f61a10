// A RequestFrame that runs at most once per `minGapMs`: for what is read, not watched (the symbol list,
// the status strip), a few updates a second are enough and cost a fraction of one per frame.
import type { RequestFrame } from "./frameCoalescer";

export function throttledFrame(minGapMs: number, requestFrame: RequestFrame, now: () => number = Date.now): RequestFrame {
  let last = Number.NEGATIVE_INFINITY;
  return (callback) => {
    const wait = last + minGapMs - now();
    const run = () =>
      requestFrame((time) => {
        last = now();
        callback(time);
      });
    if (wait <= 0) return run();
    return globalThis.setTimeout(run, wait);
  };
}
