// Runs an async task every `intervalMs`, never two at once: the next run is
// scheduled when the previous one has finished.
import type { Timers } from "../stream/connection";

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class Poller {
  private timer: unknown = null;
  private running = false;
  private inFlight = false;
  private again = false;

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly timers: Timers = defaultTimers,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Run now (e.g. after a reset) and restart the interval from here. */
  kick(): void {
    if (!this.running) return;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    void this.run();
  }

  private async run(): Promise<void> {
    if (this.inFlight) {
      this.again = true; // a kick during a run: run once more right after it
      return;
    }
    this.inFlight = true;
    try {
      await this.task();
    } catch (err) {
      console.warn("poller: task failed", err);
    } finally {
      this.inFlight = false;
    }
    if (this.again && this.running) {
      this.again = false;
      void this.run();
      return;
    }
    if (!this.running || this.timer !== null) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      void this.run();
    }, this.intervalMs);
  }
}
