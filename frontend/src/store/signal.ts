// Change notification for plain stores, delivered once per frame.
// A store mutates its data, then calls `markDirty()`; listeners (React via
// useSyncExternalStore, chart updaters) run in the next frame, once.
import type { FrameCoalescer } from "./frameCoalescer";

type Listener = () => void;

export class Signal {
  private readonly listeners = new Set<Listener>();
  private version = 0;

  constructor(private readonly coalescer: FrameCoalescer) {}

  readonly subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Changes once per flush; React compares it to decide whether to re-render. */
  readonly getVersion = (): number => this.version;

  markDirty(): void {
    this.coalescer.schedule(this.flush);
  }

  private readonly flush = (): void => {
    this.version += 1;
    for (const listener of [...this.listeners]) listener();
  };
}

/** One signal per key (a symbol row): a flush notifies only the keys that changed. */
export class KeyedSignal {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly versions = new Map<string, number>();
  private readonly dirty = new Set<string>();

  constructor(private readonly coalescer: FrameCoalescer) {}

  subscribe(key: string, listener: Listener): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => {
      const current = this.listeners.get(key);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.listeners.delete(key);
    };
  }

  getVersion(key: string): number {
    return this.versions.get(key) ?? 0;
  }

  markDirty(key: string): void {
    this.dirty.add(key);
    this.coalescer.schedule(this.flush);
  }

  private readonly flush = (): void => {
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      this.versions.set(key, (this.versions.get(key) ?? 0) + 1);
      const set = this.listeners.get(key);
      if (set) for (const listener of [...set]) listener();
    }
  };
}
