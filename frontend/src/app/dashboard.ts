// The composition root: the API client and its queries, the stores, the streams.
// Stream events go straight into the stores; React only hears from the stores, once per frame
// (the symbol list and the status strip a few times a second).
import { QueryObserver, isCancelledError, type QueryClient, type QueryKey, type QueryObserverOptions } from "@tanstack/react-query";
import { ApiClient, ApiError, type FetchLike } from "../api/client";
import { apiQueries, createQueryClient, type ApiQueries } from "../api/queries";
import type { MergedTicks, SymbolView, SystemStatus, TapeTick } from "../api/types";
import type { DashboardConfig } from "../config/loadConfig";
import { MarketStore } from "../market/marketStore";
import { TapeStore, type TapeMode } from "../market/tapeStore";
import { PipelineStore } from "../pipeline/pipelineStore";
import { StreamConnection, type ConnectionState, type EventSourceConstructor } from "../stream/connection";
import type { Envelope } from "../stream/envelope";
import { FrameCoalescer, defaultRequestFrame, type RequestFrame } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { throttledFrame } from "../store/throttledFrame";
import { SystemStore } from "../system/systemStore";

export const CLOCK_MS = 1_000; // drop resolved alerts whose linger is over; age symbols into staleness
export const LIST_REFRESH_MS = 250; // the symbol list re-renders at most 4 times a second
export const STRIP_REFRESH_MS = 500; // the status strip at most twice a second
export const MAIN_CONFLATE = "250ms"; // the newest view per symbol per 250 ms is all the market view shows

const MAIN_TYPES = ["symbol.updated", "rttm.metrics", "alert.fired", "alert.resolved"] as const;

export interface DashboardDeps {
  EventSource: EventSourceConstructor;
  fetch?: FetchLike;
  requestFrame?: RequestFrame;
  now?: () => number;
}

export class Dashboard {
  readonly api: ApiClient;
  readonly queryClient: QueryClient;
  readonly queries: ApiQueries;
  readonly coalescer: FrameCoalescer;
  readonly market: MarketStore;
  readonly tape: TapeStore;
  readonly pipeline: PipelineStore;
  readonly system: SystemStore;

  /** API problems shown in the error panel (null: all good). */
  apiError: string | null = null;
  readonly apiErrorChanged: Signal;
  /** Bumps when state was reloaded after a `reset`: views refetch what they show. */
  reloadSeq = 0;
  readonly reloaded: Signal;
  tapeMode: TapeMode = "selected";
  tapeState: ConnectionState = "offline";
  readonly tapeChanged: Signal;

  private readonly main: StreamConnection;
  private tapeStream: StreamConnection | null = null;
  private tapeWanted = false;
  private readonly observers: Array<() => () => void>;
  private unsubscribers: Array<() => void> = [];
  private readonly now: () => number;
  private clockTimer: ReturnType<typeof setInterval> | null = null;
  private wasLive = false;

  constructor(
    readonly config: DashboardConfig,
    private readonly deps: DashboardDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.api = new ApiClient(config.apiBaseUrl, deps.fetch);
    this.queryClient = createQueryClient();
    this.queries = apiQueries(this.api);
    this.coalescer = new FrameCoalescer(deps.requestFrame);
    const paced = (ms: number) => new FrameCoalescer(throttledFrame(ms, deps.requestFrame ?? defaultRequestFrame, this.now));
    this.market = new MarketStore(this.coalescer, () => this.onSelected(), this.now, paced(LIST_REFRESH_MS));
    this.tape = new TapeStore(this.coalescer);
    this.pipeline = new PipelineStore(this.coalescer, this.now);
    this.system = new SystemStore(paced(STRIP_REFRESH_MS));
    this.apiErrorChanged = new Signal(this.coalescer);
    this.reloaded = new Signal(this.coalescer);
    this.tapeChanged = new Signal(this.coalescer);
    this.main = new StreamConnection({
      url: config.streamUrl,
      EventSource: deps.EventSource,
      types: MAIN_TYPES,
      conflate: MAIN_CONFLATE,
      onEnvelope: (env) => this.handle(env),
      onReset: () => void this.reload(),
      onState: (state) => this.onMainState(state),
    });
    this.observers = [
      () => this.observe(this.queries.system(), (status) => this.onSystem(status), (err) => this.onSystemError(err)),
      () => this.observe(this.queries.dlq(), (dlq) => this.pipeline.setDlq(dlq.events ?? [])),
      () => this.observe(this.queries.stuck(), (stuck) => this.pipeline.setStuck(stuck)),
    ];
  }

  start(): void {
    this.queryClient.mount(); // refetch on focus and when the browser is back online
    this.main.start();
    void this.load();
    this.unsubscribers = this.observers.map((subscribe) => subscribe());
    this.clockTimer = setInterval(() => {
      this.pipeline.pruneAlerts();
      this.market.checkStale();
    }, CLOCK_MS);
  }

  stop(): void {
    this.main.stop();
    this.tapeStream?.stop();
    this.tapeStream = null;
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    this.unsubscribers = [];
    this.queryClient.unmount();
    void this.queryClient.cancelQueries();
    if (this.clockTimer !== null) clearInterval(this.clockTimer);
    this.clockTimer = null;
  }

  /** Initial state from the API (also after a `reset` and from the error panel's retry): every symbol in one call. */
  async load(): Promise<void> {
    try {
      const snapshot = await this.queryClient.fetchQuery(this.queries.snapshot());
      this.market.loadSnapshot(snapshot);
      this.setApiError(null);
      await this.loadPipeline();
    } catch (err) {
      if (!isCancelledError(err)) this.setApiError(describe(err)); // cancelled: the dashboard stopped
    }
  }

  async reload(): Promise<void> {
    await this.load();
    this.reloadSeq += 1;
    this.reloaded.markDirty();
    await this.queryClient.invalidateQueries(); // what is on screen asks again
  }

  selectSymbol(symbol: string): void {
    this.market.select(symbol);
  }

  /** Every selection change, clicked or automatic (the first symbol to arrive): follow it. */
  private onSelected(): void {
    if (this.tapeMode === "selected") this.restartTape();
  }

  setTapeMode(mode: TapeMode): void {
    if (mode === this.tapeMode) return;
    this.tapeMode = mode;
    this.tapeChanged.markDirty();
    this.restartTape();
  }

  /** The tape's stream (ticks.merged: a row per symbol per TICK_MERGE_MS, not per tick) runs only while a tape
   * is on screen. */
  setTapeActive(active: boolean): void {
    this.tapeWanted = active;
    this.restartTape();
  }

  private restartTape(): void {
    this.tapeStream?.stop();
    this.tapeStream = null;
    const symbol = this.tapeMode === "selected" ? this.market.selected : null;
    this.tape.setFilter(symbol);
    if (!this.tapeWanted || (this.tapeMode === "selected" && symbol === null)) {
      this.setTapeState("offline");
      return;
    }
    if (symbol) {
      const view = this.market.view(symbol);
      if (view) this.tape.seed(view.last_ticks.map((t) => ({ ...t, symbol })));
    }
    const stream = new StreamConnection({
      url: this.config.streamUrl,
      EventSource: this.deps.EventSource,
      types: ["ticks.merged"], // asking for tick.received would make the API publish every tick for us
      symbols: symbol ? [symbol] : undefined,
      resume: false, // the tape shows what is live; after a drop it does not replay the backlog
      onEnvelope: (env) => {
        if (env.type === "ticks.merged") this.tape.push(tapeRow(env.data));
      },
      onState: (state) => this.setTapeState(state),
    });
    this.tapeStream = stream;
    stream.start();
  }

  private setTapeState(state: ConnectionState): void {
    this.tapeState = state;
    this.tapeChanged.markDirty();
  }

  private handle(env: Envelope): void {
    switch (env.type) {
      case "symbol.updated":
        this.applyView(env.data.view);
        break;
      case "rttm.metrics":
        this.pipeline.applySnapshot(env.data);
        break;
      case "alert.fired":
        this.pipeline.alertFired(env.data);
        break;
      case "alert.resolved":
        this.pipeline.alertResolved(env.data);
        break;
      case "tick.received":
        this.tape.push(env.data);
        break;
    }
  }

  private applyView(view: SymbolView): void {
    const outcome = this.market.applyView(view);
    if (outcome === "ignored") return;
    this.system.setLatency(view.latency_ms);
    if (outcome === "no-session") void this.refreshSessions();
  }

  /** A symbol new to this page, or whose day turned: the snapshot tells its session (one request for many). */
  private async refreshSessions(): Promise<void> {
    try {
      this.market.loadSnapshot(await this.queryClient.fetchQuery(this.queries.snapshot()));
    } catch (err) {
      if (!isCancelledError(err)) console.warn("snapshot fetch failed", err);
    }
  }

  private onMainState(state: ConnectionState): void {
    this.system.setSseState(state);
    this.market.setLive(state === "live");
    if (state === "live" && this.wasLive) void this.queryClient.invalidateQueries(); // back after a drop
    if (state === "live") this.wasLive = true;
  }

  /** Subscribe to a query while the dashboard runs: each new answer (or error) goes to a store. */
  private observe<T, K extends QueryKey>(
    options: QueryObserverOptions<T, Error, T, T, K>,
    onData: (data: T) => void,
    onError?: (err: Error) => void,
  ): () => void {
    const observer = new QueryObserver(this.queryClient, options);
    let seen = 0;
    return observer.subscribe((result) => {
      if (result.status === "success" && result.dataUpdatedAt !== seen) {
        seen = result.dataUpdatedAt;
        onData(result.data);
      } else if (result.status === "error" && result.fetchStatus === "idle") {
        onError?.(result.error);
      }
    });
  }

  private async loadPipeline(): Promise<void> {
    const [snapshot, alerts] = await Promise.allSettled([
      this.queryClient.fetchQuery(this.queries.rttmMetrics()),
      this.queryClient.fetchQuery(this.queries.alerts()),
    ]);
    if (snapshot.status === "fulfilled" && snapshot.value) this.pipeline.applySnapshot(snapshot.value);
    if (alerts.status === "fulfilled") this.pipeline.applyAlerts(alerts.value);
  }

  private onSystem(status: SystemStatus): void {
    this.system.applyStatus(status, this.now());
    if (this.apiError) void this.load(); // the API is back: reload what failed
  }

  private onSystemError(err: Error): void {
    this.system.setStatusError(describe(err));
    if (err instanceof ApiError && err.unreachable) this.setApiError(describe(err));
  }

  private setApiError(message: string | null): void {
    if (message === this.apiError) return;
    this.apiError = message;
    this.apiErrorChanged.markDirty();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A tape row for merged ticks: their last price and time, their volume and how many they were. */
export function tapeRow(m: MergedTicks): TapeTick {
  return { event_id: m.last_event_id, symbol: m.symbol, price: m.close, volume: m.volume, ts: m.last_ts, count: m.count };
}
