import { useDashboard } from "../app/context";
import { useKeyedSignal } from "../store/useSignal";
import { fmtMs, fmtNum, fmtPct, fmtPrice, fmtTime } from "../util/format";

/** Figures of the selected symbol's latest view W. */
export function SymbolDetail({ symbol }: { symbol: string }) {
  const dashboard = useDashboard();
  useKeyedSignal(dashboard.market.viewChanged, symbol);
  const view = dashboard.market.view(symbol);
  const dir = (view?.change ?? 0) > 0 ? "up" : (view?.change ?? 0) < 0 ? "down" : "";
  return (
    <section className="panel detail" data-testid="symbol-detail">
      <div className="detail-main">
        <span className="detail-symbol">{symbol}</span>
        <span className={`detail-price ${dir}`}>{fmtPrice(view?.price)}</span>
        <span className={dir}>{fmtPct(view?.change_pct)}</span>
      </div>
      <dl className="figures">
        <Figure label="1m chg" value={fmtPct(view?.change_1m_pct)} />
        <Figure label="1m high" value={fmtPrice(view?.high_1m)} />
        <Figure label="1m low" value={fmtPrice(view?.low_1m)} />
        <Figure label="VWAP-1m" value={fmtPrice(view?.vwap_1m)} />
        <Figure label="SMA-10" value={fmtPrice(view?.sma_10)} />
        <Figure label="trades 1m" value={fmtNum(view?.trades_1m)} />
        <Figure label="vol 1m" value={fmtNum(view?.volume_1m, 2)} />
        <Figure label="last tick" value={fmtTime(view?.ts)} />
        <Figure label="latency" value={fmtMs(view?.latency_ms)} />
        <Figure label="version" value={fmtNum(view?.version)} />
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
