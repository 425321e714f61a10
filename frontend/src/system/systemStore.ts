// The always-visible status strip: stream state, ingest rate, ingest-to-view latency, queue depth.
import type { SystemStatus } from "../api/types";
import type { ConnectionState } from "../stream/connection";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { RateMeter } from "./rate";

export class SystemStore {
  sseState: ConnectionState = "offline";
  latencyMs: number | null = null;
  status: SystemStatus | null = null;
  statusError: string | null = null;
  private readonly meter = new RateMeter();
  readonly changed: Signal;

  constructor(coalescer: FrameCoalescer) {
    this.changed = new Signal(coalescer);
  }

  get ingestRate(): number | null {
    return this.meter.rate;
  }

  setSseState(state: ConnectionState): void {
    if (state === this.sseState) return;
    this.sseState = state;
    this.changed.markDirty();
  }

  setLatency(ms: number | null | undefined): void {
    if (ms === null || ms === undefined || !Number.isFinite(ms) || ms === this.latencyMs) return;
    this.latencyMs = ms;
    this.changed.markDirty();
  }

  /** A poll of GET /system at `at` (ms): the rate counts ticks when the API says which items were ticks. */
  applyStatus(status: SystemStatus, at: number): void {
    this.status = status;
    this.statusError = null;
    this.meter.update(tickTotal(status), at);
    this.changed.markDirty();
  }

  setStatusError(message: string): void {
    this.statusError = message;
    this.meter.reset();
    this.changed.markDirty();
  }
}

export function tickTotal(status: SystemStatus): number {
  const ticks = status.ingest.accepted_by_kind?.tick;
  return typeof ticks === "number" ? ticks : status.ingest.accepted_total;
}
