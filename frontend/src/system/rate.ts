// Ingest rate from a monotonically growing counter sampled by polling:
// (total now - total before) / seconds between the samples.

export interface CounterSample {
  total: number;
  at: number; // ms
}

export class RateMeter {
  private last: CounterSample | null = null;
  private current: number | null = null;

  /** Items per second, or null until two samples are in. */
  get rate(): number | null {
    return this.current;
  }

  update(total: number, at: number): number | null {
    if (!Number.isFinite(total)) return this.current;
    const last = this.last;
    if (last === null || total < last.total) {
      // First sample, or the counter went back (the API restarted): start over.
      this.last = { total, at };
      this.current = null;
      return null;
    }
    const seconds = (at - last.at) / 1000;
    if (seconds <= 0) return this.current;
    this.current = (total - last.total) / seconds;
    this.last = { total, at };
    return this.current;
  }

  reset(): void {
    this.last = null;
    this.current = null;
  }
}
