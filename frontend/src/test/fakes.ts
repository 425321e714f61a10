// Test doubles for the browser pieces the stream code depends on.
import type { EventSourceLike, Timers } from "../stream/connection";

export class FakeEventSource implements EventSourceLike {
  static instances: FakeEventSource[] = [];
  readyState = 0;
  onopen: ((ev: Event) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  closed = false;
  private readonly listeners = new Map<string, Array<(ev: MessageEvent) => void>>();

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  static reset(): void {
    FakeEventSource.instances = [];
  }

  static last(): FakeEventSource {
    const es = FakeEventSource.instances[FakeEventSource.instances.length - 1];
    if (!es) throw new Error("no EventSource was created");
    return es;
  }

  get params(): URLSearchParams {
    return new URL(this.url).searchParams;
  }

  addEventListener(type: string, listener: (ev: MessageEvent) => void): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener);
    this.listeners.set(type, list);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({ type: "open" } as Event);
  }

  /** Deliver one SSE event as the browser would (`lastEventId` from the `id:` line). */
  emit(type: string, data: string, id = ""): void {
    const ev = { type, data, lastEventId: id } as MessageEvent;
    for (const listener of this.listeners.get(type) ?? []) listener(ev);
  }

  fail(readyState = 0): void {
    this.readyState = readyState;
    this.onerror?.({ type: "error" } as Event);
  }
}

/** Timers that run only when told to. */
export class ManualTimers implements Timers {
  private nextId = 1;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  readonly delays: number[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { fn, ms });
    this.delays.push(ms);
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Run every timer due now (in order of scheduling). */
  runAll(): void {
    const due = [...this.pending.entries()];
    this.pending.clear();
    for (const [, t] of due) t.fn();
  }
}

/** A requestAnimationFrame that runs frames only when told to. */
export class ManualFrames {
  private callbacks: Array<(t: number) => void> = [];
  requested = 0;
  readonly request = (cb: (t: number) => void): number => {
    this.requested += 1;
    this.callbacks.push(cb);
    return this.requested;
  };

  get waiting(): number {
    return this.callbacks.length;
  }

  frame(time = 0): void {
    const cbs = this.callbacks;
    this.callbacks = [];
    for (const cb of cbs) cb(time);
  }
}

export function envelope(type: string, id: string, data: unknown, symbol?: string): string {
  return JSON.stringify({ id, type, symbol, data });
}

/** A fetch answering fixed JSON per path under `base` (404 otherwise); `asked` lists the paths asked, in order. */
export function fakeApi(base: string, routes: Record<string, unknown>) {
  const asked: string[] = [];
  const fetchFn = async (url: string) => {
    const path = url.replace(base, "");
    asked.push(path);
    return path in routes ? new Response(JSON.stringify(routes[path])) : new Response("{}", { status: 404 });
  };
  return { asked, fetchFn, routes };
}
