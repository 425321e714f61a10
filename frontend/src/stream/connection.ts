// One SSE subscription that stays connected: it parses envelopes, remembers the
// last event id, and on any error closes the EventSource and opens a new one
// after a backoff delay with `?last_event_id=` so nothing is missed. `overflow`
// (the gateway dropped us for being slow) reconnects at once the same way, and
// with a growing delay when overflows repeat (a client that cannot keep up must
// not hammer the gateway with replays); `reset` (history gap) asks the owner to
// refetch its state.
//
// The EventSource constructor and the timers are parameters so this runs in tests.
import { DEFAULT_BACKOFF, backoffDelay, type BackoffOptions } from "./backoff";
import {
  CONTROL_TYPES,
  DATA_TYPES,
  isStreamId,
  parseControl,
  parseEnvelope,
  type ControlEvent,
  type Envelope,
} from "./envelope";

export type ConnectionState = "live" | "reconnecting" | "offline";

export const OFFLINE_AFTER_FAILURES = 5; // consecutive failed connects (about 7 s of retrying) before the state reads "offline"; retries go on
export const OVERFLOW_RECONNECT_MS = 0; // after a first `overflow`, reconnect at once: the gateway replays what we missed
export const OVERFLOW_QUIET_MS = 30_000; // an overflow this long after the previous one counts as a first one again

/** The part of the browser's EventSource this class uses. */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  addEventListener(type: string, listener: (ev: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface StreamOptions {
  url: string;
  EventSource: EventSourceConstructor;
  onEnvelope: (envelope: Envelope) => void;
  /** The gateway could not replay what we missed: reload the state. */
  onReset?: (event: ControlEvent) => void;
  onState?: (state: ConnectionState) => void;
  /** `?types=`; default: every data type the dashboard knows. */
  types?: readonly string[];
  /** `?conflate=` (e.g. "250ms"): the newest event per type and symbol per interval; default: every event. */
  conflate?: string;
  /** `?symbols=`; default: all. */
  symbols?: readonly string[];
  /** Pass `?last_event_id=` on reconnects (default true). A tape that only wants what is live sets false. */
  resume?: boolean;
  backoff?: BackoffOptions;
  offlineAfter?: number;
  timers?: Timers;
  random?: () => number;
  now?: () => number;
}

export class StreamConnection {
  private es: EventSourceLike | null = null;
  private timer: unknown = null;
  private failures = 0;
  private running = false;
  private lastId: string | null = null;
  private currentState: ConnectionState = "offline";
  private overflows = 0; // in a row, each within OVERFLOW_QUIET_MS of the one before
  private lastOverflowAt = Number.NEGATIVE_INFINITY;
  private readonly timers: Timers;
  private readonly types: readonly string[];
  private readonly offlineAfter: number;

  constructor(private readonly options: StreamOptions) {
    this.timers = options.timers ?? defaultTimers;
    this.types = options.types ?? DATA_TYPES;
    this.offlineAfter = options.offlineAfter ?? OFFLINE_AFTER_FAILURES;
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** The id of the last event received: where a reconnect resumes. */
  get lastEventId(): string | null {
    return this.lastId;
  }

  /** Consecutive failed connection attempts since the last successful open. */
  get failureCount(): number {
    return this.failures;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
    this.closeSource();
    this.setState("offline");
  }

  /** The URL of the next connection: filters, plus the resume id once there is one. */
  connectUrl(): string {
    const url = new URL(this.options.url);
    if (this.types.length) url.searchParams.set("types", this.types.join(","));
    if (this.options.symbols?.length) url.searchParams.set("symbols", this.options.symbols.join(","));
    if (this.options.conflate) url.searchParams.set("conflate", this.options.conflate);
    if ((this.options.resume ?? true) && this.lastId) url.searchParams.set("last_event_id", this.lastId);
    return url.toString();
  }

  private open(): void {
    this.clearTimer();
    this.closeSource();
    if (!this.running) return;
    // Still "offline" after many failures, until this attempt opens.
    if (this.failures < this.offlineAfter) this.setState("reconnecting");
    let es: EventSourceLike;
    try {
      es = new this.options.EventSource(this.connectUrl());
    } catch {
      this.retryLater();
      return;
    }
    this.es = es;
    const onData = (ev: MessageEvent) => {
      if (this.es === es) this.handleData(ev);
    };
    for (const type of this.types) es.addEventListener(type, onData);
    es.addEventListener("message", onData); // events without an `event:` line
    for (const type of CONTROL_TYPES) {
      es.addEventListener(type, (ev: MessageEvent) => {
        if (this.es !== es) return;
        const control = parseControl(type, typeof ev.data === "string" ? ev.data : "");
        if (type === "overflow") this.reconnectAfterOverflow(control);
        else this.options.onReset?.(control);
      });
    }
    es.onopen = () => {
      if (this.es !== es) return;
      this.failures = 0;
      this.setState("live");
    };
    es.onerror = () => {
      // Whatever the browser meant to do next (its own retry, or give up), we
      // close and reconnect ourselves so the backoff and the resume id are ours.
      if (this.es === es) this.retryLater();
    };
  }

  private handleData(ev: MessageEvent): void {
    const raw = typeof ev.data === "string" ? ev.data : "";
    const envelope = parseEnvelope(raw, ev.type);
    const id = isStreamId(ev.lastEventId) ? ev.lastEventId : envelope?.id;
    if (id) this.lastId = id;
    if (!envelope) return;
    try {
      this.options.onEnvelope(envelope);
    } catch (err) {
      console.error("stream: handler failed", envelope.type, err);
    }
  }

  private retryLater(): void {
    this.closeSource();
    if (!this.running) return;
    const delay = backoffDelay(this.failures, this.options.backoff ?? DEFAULT_BACKOFF, this.options.random);
    this.failures += 1;
    this.setState(this.failures >= this.offlineAfter ? "offline" : "reconnecting");
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  private reconnectAfterOverflow(control: ControlEvent): void {
    if (control.lastEventId && !this.lastId) this.lastId = control.lastEventId;
    this.closeSource();
    this.setState("reconnecting");
    const now = (this.options.now ?? Date.now)();
    if (now - this.lastOverflowAt > OVERFLOW_QUIET_MS) this.overflows = 0;
    this.lastOverflowAt = now;
    const backoff = this.options.backoff ?? DEFAULT_BACKOFF;
    const delay = this.overflows === 0 ? OVERFLOW_RECONNECT_MS : backoffDelay(this.overflows - 1, backoff, this.options.random);
    this.overflows += 1;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  private closeSource(): void {
    const es = this.es;
    this.es = null;
    if (es) {
      es.onopen = null;
      es.onerror = null;
      es.close();
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    this.options.onState?.(state);
  }
}
