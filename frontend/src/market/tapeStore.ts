// The live tape: the latest ticks, bounded, newest first.
import type { TapeTick as Tick } from "../api/types";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { Ring } from "../util/ring";

export const TAPE_SIZE = 50; // ticks shown; older ones are dropped

export type TapeMode = "selected" | "all";

export class TapeStore {
  private readonly ring: Ring<Tick>;
  private filter: string | null = null;
  private readonly ids = new Set<string>(); // event ids in the ring: a tick seen twice is shown once
  readonly changed: Signal;

  constructor(coalescer: FrameCoalescer, size = TAPE_SIZE) {
    this.ring = new Ring(size);
    this.changed = new Signal(coalescer);
  }

  get size(): number {
    return this.ring.size;
  }

  get capacity(): number {
    return this.ring.capacity;
  }

  /** Keep only ticks of `symbol` (null: all), starting empty. */
  setFilter(symbol: string | null): void {
    this.filter = symbol;
    this.ring.clear();
    this.ids.clear();
    this.changed.markDirty();
  }

  push(tick: Tick): void {
    if (this.filter !== null && tick.symbol !== this.filter) return;
    if (this.ids.has(tick.event_id)) return;
    this.ids.add(tick.event_id);
    const evicted = this.ring.push(tick);
    if (evicted) this.ids.delete(evicted.event_id);
    this.changed.markDirty();
  }

  /** Seed with known ticks (oldest first), e.g. the view's last_ticks. */
  seed(ticks: readonly Tick[]): void {
    for (const t of ticks) this.push(t);
  }

  ticks(): Tick[] {
    return this.ring.newestFirst();
  }
}
