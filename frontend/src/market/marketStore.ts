// Per-symbol state for the Market view: list rows and the latest view W.
// Stream handlers call applyView; rows re-render per frame, only those that changed.
import type { SymbolSummary, SymbolView } from "../api/types";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { KeyedSignal, Signal } from "../store/signal";

export type Direction = "up" | "down" | null;

export interface SymbolRowState {
  symbol: string;
  price: number | null;
  direction: Direction; // of the last price change
  changeSeq: number; // bumps on every price change: restarts the flash
  changePct: number | null;
  change1mPct: number | null;
  sma10: number | null;
  vwap1m: number | null;
  volume1m: number | null;
  ts: number | null;
  version: number;
}

export class MarketStore {
  private readonly rows = new Map<string, SymbolRowState>();
  private readonly views = new Map<string, SymbolView>();
  private sorted: string[] = [];
  private selectedSymbol: string | null = null;

  /** The set of symbols or the selection changed. */
  readonly list: Signal;
  /** A symbol's row changed. */
  readonly rowChanged: KeyedSignal;
  /** A symbol's full view changed (chart, detail panel). */
  readonly viewChanged: KeyedSignal;

  /** `onSelect` hears every change of the selection, including the first symbol picked automatically. */
  constructor(
    coalescer: FrameCoalescer,
    private readonly onSelect: (symbol: string | null) => void = () => {},
  ) {
    this.list = new Signal(coalescer);
    this.rowChanged = new KeyedSignal(coalescer);
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

  /** From GET /symbols: adds rows; a summary never overwrites a newer view. */
  loadSummaries(summaries: readonly SymbolSummary[]): void {
    for (const s of summaries) {
      const row = this.ensureRow(s.symbol);
      if (s.version !== null && s.version > row.version && s.price !== null) {
        this.setPrice(row, s.price);
        row.ts = s.ts;
        row.version = s.version;
        this.rowChanged.markDirty(s.symbol);
      }
    }
    if (this.selectedSymbol === null && this.sorted.length) this.select(this.sorted[0] ?? null);
  }

  /** A view from the stream or the API. Older versions than the one held are ignored; returns whether it was applied. */
  applyView(view: SymbolView): boolean {
    const held = this.views.get(view.symbol);
    if (held && held.version >= view.version) return false;
    this.views.set(view.symbol, view);
    const row = this.ensureRow(view.symbol);
    if (view.version >= row.version) {
      this.setPrice(row, view.price);
      row.changePct = view.change_pct;
      row.change1mPct = view.change_1m_pct;
      row.sma10 = view.sma_10;
      row.vwap1m = view.vwap_1m;
      row.volume1m = view.volume_1m;
      row.ts = view.ts;
      row.version = view.version;
      this.rowChanged.markDirty(view.symbol);
    }
    this.viewChanged.markDirty(view.symbol);
    if (this.selectedSymbol === null) this.select(view.symbol);
    return true;
  }

  private setPrice(row: SymbolRowState, price: number): void {
    if (row.price !== null && price !== row.price) {
      row.direction = price > row.price ? "up" : "down";
      row.changeSeq += 1;
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
        changeSeq: 0,
        changePct: null,
        change1mPct: null,
        sma10: null,
        vwap1m: null,
        volume1m: null,
        ts: null,
        version: -1,
      };
      this.rows.set(symbol, row);
      this.sorted = [...this.rows.keys()].sort();
      this.list.markDirty();
    }
    return row;
  }
}
