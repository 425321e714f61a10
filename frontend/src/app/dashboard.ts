// The composition root: the API client, the stores, the streams and the pollers.
// Stream events go straight into the stores; React only hears from the stores,
// once per frame.
import { ApiClient, ApiError, type FetchLike } from "../api/client";
import type { SymbolView } from "../api/types";
import type { DashboardConfig } from "../config/loadConfig";
import { MarketStore } from "../market/marketStore";
import { TapeStore, type TapeMode } from "../market/tapeStore";
import { PipelineStore } from "../pipeline/pipelineStore";
import { StreamConnection, type ConnectionState, type EventSourceConstructor } from "../stream/connection";
import type { Envelope } from "../stream/envelope";
import { FrameCoalescer, type RequestFrame } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { SystemStore } from "../system/systemStore";
import { Poller } from "../util/poller";

export const SYSTEM_POLL_MS = 2_000; // GET /system
export const LISTS_POLL_MS = 5_000; // GET /rttm/dlq and /rttm/stuck
export const ALERT_PRUNE_MS = 1_000; // drop resolved alerts whose linger is over
export const VIEW_FETCH_CONCURRENCY = 6; // GET /symbols/{id} in parallel at load

const MAIN_TYPES = ["symbol.updated", "rttm.metrics", "alert.fired", "alert.resolved"] as const;

export interface DashboardDeps {
  EventSource: EventSourceConstructor;
  fetch?: FetchLike;
  requestFrame?: RequestFrame;
  now?: () => number;
}

export class Dashboard {
  readonly api: ApiClient;
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
  private readonly pollers: Poller[];
  private readonly now: () => number;
  private pruneTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly config: DashboardConfig,
    private readonly deps: DashboardDeps,
  ) {
    this.now = deps.now ?? Date.now;
    this.api = new ApiClient(config.apiBaseUrl, deps.fetch);
    this.coalescer = new FrameCoalescer(deps.requestFrame);
    this.market = new MarketStore(this.coalescer, (symbol) => this.onSelected(symbol));
    this.tape = new TapeStore(this.coalescer);
    this.pipeline = new PipelineStore(this.coalescer, this.now);
    this.system = new SystemStore(this.coalescer);
    this.apiErrorChanged = new Signal(this.coalescer);
    this.reloaded = new Signal(this.coalescer);
    this.tapeChanged = new Signal(this.coalescer);
    this.main = new StreamConnection({
      url: config.streamUrl,
      EventSource: deps.EventSource,
      types: MAIN_TYPES,
      onEnvelope: (env) => this.handle(env),
      onReset: () => void this.reload(),
      onState: (state) => this.system.setSseState(state),
    });
    this.pollers = [
      new Poller(() => this.pollSystem(), SYSTEM_POLL_MS),
      new Poller(() => this.pollLists(), LISTS_POLL_MS),
    ];
  }

  start(): void {
    this.main.start();
    void this.load();
    for (const p of this.pollers) p.start();
    this.pruneTimer = setInterval(() => this.pipeline.pruneAlerts(), ALERT_PRUNE_MS);
  }

  stop(): void {
    this.main.stop();
    this.tapeStream?.stop();
    this.tapeStream = null;
    for (const p of this.pollers) p.stop();
    if (this.pruneTimer !== null) clearInterval(this.pruneTimer);
    this.pruneTimer = null;
  }

  /** Initial state from the API (also after a `reset` and from the error panel's retry). */
  async load(): Promise<void> {
    try {
      const { symbols } = await this.api.symbols();
      this.market.loadSummaries(symbols);
      this.setApiError(null);
      await Promise.all([this.loadViews(symbols.map((s) => s.symbol)), this.loadPipeline()]);
    } catch (err) {
      this.setApiError(describe(err));
    }
  }

  async reload(): Promise<void> {
    await this.load();
    this.reloadSeq += 1;
    this.reloaded.markDirty();
    for (const p of this.pollers) p.kick();
  }

  selectSymbol(symbol: string): void {
    this.market.select(symbol);
  }

  /** Every selection change, clicked or automatic (the first symbol to arrive): follow it. */
  private onSelected(symbol: string | null): void {
    if (this.tapeMode === "selected") this.restartTape();
    if (symbol && !this.market.view(symbol)) void this.fetchView(symbol);
  }

  setTapeMode(mode: TapeMode): void {
    if (mode === this.tapeMode) return;
    this.tapeMode = mode;
    this.tapeChanged.markDirty();
    this.restartTape();
  }

  /** The tape's stream (tick.received) runs only while a tape is on screen. */
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
      types: ["tick.received"],
      symbols: symbol ? [symbol] : undefined,
      resume: false, // the tape shows what is live; after a drop it does not replay the backlog
      onEnvelope: (env) => {
        if (env.type === "tick.received") this.tape.push(env.data);
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
    if (this.market.applyView(view)) this.system.setLatency(view.latency_ms);
  }

  private async loadViews(symbols: readonly string[]): Promise<void> {
    const queue = [...symbols];
    const worker = async () => {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) await this.fetchView(s);
    };
    await Promise.all(Array.from({ length: Math.min(VIEW_FETCH_CONCURRENCY, queue.length) }, worker));
  }

  private async fetchView(symbol: string): Promise<void> {
    try {
      const view = await this.api.view(symbol);
      if (view) this.applyView(view);
    } catch (err) {
      console.warn("view fetch failed", symbol, err);
    }
  }

  private async loadPipeline(): Promise<void> {
    const [snapshot, alerts] = await Promise.allSettled([this.api.rttmMetrics(), this.api.alerts()]);
    if (snapshot.status === "fulfilled" && snapshot.value) this.pipeline.applySnapshot(snapshot.value);
    if (alerts.status === "fulfilled") this.pipeline.applyAlerts(alerts.value);
  }

  private async pollSystem(): Promise<void> {
    try {
      const status = await this.api.system();
      this.system.applyStatus(status, this.now());
      if (this.apiError) void this.load(); // the API is back: reload what failed
    } catch (err) {
      this.system.setStatusError(describe(err));
      if (err instanceof ApiError && err.unreachable) this.setApiError(describe(err));
    }
  }

  private async pollLists(): Promise<void> {
    const [dlq, stuck] = await Promise.allSettled([this.api.dlq(20), this.api.stuck(20)]);
    if (dlq.status === "fulfilled") this.pipeline.setDlq(dlq.value.events ?? []);
    if (stuck.status === "fulfilled") this.pipeline.setStuck(stuck.value);
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
