// Coalesces work to at most one run per animation frame: stream handlers only
// mutate plain stores and schedule a flush; the flush (notify React, update
// charts) runs once in the next frame however many events arrived.

export type RequestFrame = (callback: (time: number) => void) => unknown;

export function defaultRequestFrame(callback: (time: number) => void): unknown {
  if (typeof globalThis.requestAnimationFrame === "function") return globalThis.requestAnimationFrame(callback);
  return globalThis.setTimeout(() => callback(Date.now()), 16);
}

export class FrameCoalescer {
  private readonly pending = new Set<() => void>();
  private frameRequested = false;

  constructor(private readonly requestFrame: RequestFrame = defaultRequestFrame) {}

  /** Run `task` in the next frame; a task already waiting for that frame is not added twice. */
  schedule(task: () => void): void {
    this.pending.add(task);
    if (this.frameRequested) return;
    this.frameRequested = true;
    this.requestFrame(this.runFrame);
  }

  get waiting(): number {
    return this.pending.size;
  }

  private readonly runFrame = (): void => {
    this.frameRequested = false;
    const tasks = [...this.pending];
    this.pending.clear();
    for (const task of tasks) {
      try {
        task();
      } catch (err) {
        console.error("frame task failed", err);
      }
    }
  };
}
