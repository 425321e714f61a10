import { useDashboard } from "../app/context";
import { useKeyedSignal } from "../store/useSignal";
import { fmtClock, fmtCompact, fmtMs, fmtNum, fmtPct, fmtPrice, fmtTime } from "../util/format";

/** Figures of the selected symbol's latest view W: the day's change first, then the last minute's. */
export function SymbolDetail({ symbol }: { symbol: string }) {
  const dashboard = useDashboard();
  useKeyedSignal(dashboard.market.viewChanged, symbol);
  useKeyedSignal(dashboard.market.rowChanged, symbol); // staleness and the session change
  const view = dashboard.market.view(symbol);
  const row = dashboard.market.row(symbol);
  const day = row?.sessionChangePct ?? null;
  const dir = day === null || day === 0 ? "" : day > 0 ? "up" : "down";
  const stale = row?.stale ?? true;
  const tick = row?.tickSize;
  return (
    <section className={`panel detail${stale ? " stale" : ""}`} data-testid="symbol-detail" data-stale={stale}>
      <div className="detail-main">
        <span className="detail-symbol">{symbol}</span>
        <span className="detail-price">{fmtPrice(view?.price, tick)}</span>
        <span className={dir} title="Change since the first price of the UTC day">
          {fmtPct(day)} <span className="muted">today</span>
        </span>
        {stale && <span className="as-of">as of {fmtClock(view?.ts)} UTC</span>}
      </div>
      <dl className="figures">
        <Figure label="day open" value={fmtPrice(row?.session?.open, tick)} />
        <Figure label="1m chg" value={fmtPct(view?.change_1m_pct)} />
        <Figure label="1m high" value={fmtPrice(view?.high_1m, tick)} />
        <Figure label="1m low" value={fmtPrice(view?.low_1m, tick)} />
        <Figure label="VWAP 1m" value={fmtPrice(view?.vwap_1m, tick)} />
        <Figure label="SMA 10 ticks" value={fmtPrice(view?.sma_10, tick)} />
        <Figure label="trades 1m" value={fmtNum(view?.trades_1m)} />
        <Figure label="vol 1m" value={fmtCompact(view?.volume_1m)} />
        <Figure label="last tick (UTC)" value={fmtTime(view?.ts)} />
        <Figure label="ingest→view" value={fmtMs(view?.latency_ms)} />
      </dl>
    </section>
  );
}

function Figure({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}
