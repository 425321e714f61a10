// Per-symbol state for the Market view: list rows and the latest view W.
// Stream handlers call applyView; rows re-render (at the list's pace) only when they changed.
import type { Session, Snapshot, SymbolView } from "../api/types";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { KeyedSignal, Signal } from "../store/signal";
import { fmtPrice } from "../util/format";

export type Direction = "up" | "down" | null;

export const STALE_AFTER_MS = 15_000; // a symbol whose last tick is older than this is shown as stale
export const FLASH_MS = 600; // how long a price flash lasts (styles.css runs the animation this long)
export const FLASH_GAP_MS = 2_000; // at most one flash per row in this time: at high rates a cell is not lit for good
export const DAY_MS = 86_400_000;

export interface SymbolRowState {
  symbol: string;
  price: number | null;
  direction: Direction; // of the last price change
  flashSeq: number; // bumps on a flash (a change of the shown price, at most once per FLASH_GAP_MS)
  flashAt: number; // when the last flash began (ms, the store's clock)
  tickSize: number | null; // its price step, from the snapshot (null: not known yet)
  session: Session | null; // the UTC day of the last tick and its first price
  sessionChangePct: number | null; // price vs the session's open
  vwap1m: number | null;
  volume1m: number | null;
  trades1m: number | null;
  ts: number | null; // the last tick's event time
  version: number;
  stale: boolean; // the stream is not live, or the last tick is older than STALE_AFTER_MS
}

export function dayStart(ts: number): number {
  return Math.floor(ts / DAY_MS) * DAY_MS;
}

export class MarketStore {
  private readonly rows = new Map<string, SymbolRowState>();
  private readonly views = new Map<string, SymbolView>();
  private sorted: string[] = [];
  private selectedSymbol: string | null = null;
  private live = false;

  /** The set of symbols or the selection changed. */
  readonly list: Signal;
  /** A symbol's row changed (flushed at the list's pace: a few times a second). */
  readonly rowChanged: KeyedSignal;
  /** A symbol's full view changed (chart, detail panel; flushed per frame). */
  readonly viewChanged: KeyedSignal;

  /**
   * `onSelect` hears every change of the selection, including the first symbol picked automatically.
   * `rowCoalescer` paces the rows (default: the frame coalescer).
   */
  constructor(
    coalescer: FrameCoalescer,
    private readonly onSelect: (symbol: string | null) => void = () => {},
    private readonly now: () => number = Date.now,
    rowCoalescer: FrameCoalescer = coalescer,
  ) {
    this.list = new Signal(coalescer);
    this.rowChanged = new KeyedSignal(rowCoalescer);
    this.viewChanged = new KeyedSignal(coalescer);
  }

  symbols(): readonly string[] {
    return this.sorted;
  }

  row(symbol: string): SymbolRowState | undefined {
    return this.rows.get(symbol);
  }

  view(symbol: string): SymbolView | undefined {
    return this.views.get(symbol);
  }

  get selected(): string | null {
    return this.selectedSymbol;
  }

  select(symbol: string | null): void {
    if (symbol === this.selectedSymbol) return;
    this.selectedSymbol = symbol;
    this.list.markDirty();
    this.onSelect(symbol);
  }

  /** A symbol's price step, once the snapshot has given it (null before: prices then show by magnitude). */
  tickSize(symbol: string): number | null {
    return this.rows.get(symbol)?.tickSize ?? null;
  }

  /** From GET /symbols/views: every symbol, its view and its session. A snapshot never overwrites a
   * newer view or a later session. */
  loadSnapshot(snapshot: Snapshot): void {
    for (const entry of snapshot.symbols) this.ensureRow(entry.symbol);
    if (this.selectedSymbol === null && this.sorted.length) this.select(this.sorted[0] ?? null);
    for (const entry of snapshot.symbols) {
      const row = this.ensureRow(entry.symbol);
      if (row.tickSize !== entry.tick_size) {
        row.tickSize = entry.tick_size;
        this.rowChanged.markDirty(entry.symbol);
      }
      if (entry.session && (row.session === null || entry.session.start >= row.session.start)) {
        row.session = entry.session;
        this.updateSessionChange(row);
        this.rowChanged.markDirty(entry.symbol);
      }
      if (entry.view) this.applyView(entry.view);
    }
  }

  /**
   * A view from the stream or the API; older versions than the one held are ignored.
   * Returns "ignored", "applied", or "no-session" (applied, but the symbol is new here or its day turned,
   * and this view does not tell the day's open: the owner refetches the snapshot, which does).
   */
  applyView(view: SymbolView): "ignored" | "applied" | "no-session" {
    const held = this.views.get(view.symbol);
    if (held && held.version >= view.version) return "ignored";
    this.views.set(view.symbol, view);
    const row = this.ensureRow(view.symbol);
    this.setPrice(row, view.price);
    row.vwap1m = view.vwap_1m;
    row.volume1m = view.volume_1m;
    row.trades1m = view.trades_1m;
    row.ts = view.ts;
    row.version = view.version;
    const start = dayStart(view.ts);
    let guessed = false;
    if (row.session === null || row.session.start < start) {
      // A new day: its first 15m candle, if this view's is that one, opened at the day's first price.
      const candle = view.candles["15m"];
      row.session = { start, open: candle && candle.t === start ? candle.open : null };
      guessed = row.session.open === null;
    }
    this.updateSessionChange(row);
    row.stale = this.isStale(row);
    this.rowChanged.markDirty(view.symbol);
    this.viewChanged.markDirty(view.symbol);
    if (this.selectedSymbol === null) this.select(view.symbol);
    return guessed ? "no-session" : "applied";
  }

  /** The main stream's state: while it is not live, every price is stale. */
  setLive(live: boolean): void {
    if (live === this.live) return;
    this.live = live;
    this.checkStale();
  }

  /** Called on a timer: rows whose last tick has aged past STALE_AFTER_MS turn stale (and only they re-render). */
  checkStale(): void {
    for (const row of this.rows.values()) {
      const stale = this.isStale(row);
      if (stale === row.stale) continue;
      row.stale = stale;
      this.rowChanged.markDirty(row.symbol);
    }
  }

  private isStale(row: SymbolRowState): boolean {
    return !this.live || row.ts === null || this.now() - row.ts > STALE_AFTER_MS;
  }

  private updateSessionChange(row: SymbolRowState): void {
    const open = row.session?.open;
    row.sessionChangePct = open && row.price !== null ? ((row.price - open) / open) * 100 : null;
  }

  private setPrice(row: SymbolRowState, price: number): void {
    if (row.price !== null && price !== row.price) {
      row.direction = price > row.price ? "up" : "down";
      const now = this.now();
      // A real change is one the reader can see: the shown digits moved.
      if (fmtPrice(price) !== fmtPrice(row.price) && now - row.flashAt >= FLASH_GAP_MS) {
        row.flashSeq += 1;
        row.flashAt = now;
      }
    }
    row.price = price;
  }

  private ensureRow(symbol: string): SymbolRowState {
    let row = this.rows.get(symbol);
    if (!row) {
      row = {
        symbol,
        price: null,
        direction: null,
        flashSeq: 0,
        flashAt: Number.NEGATIVE_INFINITY,
        tickSize: null,
        session: null,
        sessionChangePct: null,
        vwap1m: null,
        volume1m: null,
        trades1m: null,
        ts: null,
        version: -1,
        stale: true,
      };
      this.rows.set(symbol, row);
      this.sorted = [...this.rows.keys()].sort();
      this.list.markDirty();
    }
    return row;
  }
}
