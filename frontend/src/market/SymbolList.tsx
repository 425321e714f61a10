import { memo, useCallback } from "react";
import { useDashboard } from "../app/context";
import { useKeyedSignal, useSignal } from "../store/useSignal";
import { fmtNum, fmtPct, fmtPrice } from "../util/format";

// The list re-renders only when the set of symbols or the selection changes;
// each row re-renders (at most once per frame) only when its own symbol changed.
export function SymbolList() {
  const dashboard = useDashboard();
  useSignal(dashboard.market.list);
  const symbols = dashboard.market.symbols();
  const selected = dashboard.market.selected;
  const onSelect = useCallback((symbol: string) => dashboard.selectSymbol(symbol), [dashboard]);
  return (
    <section className="panel symbols-panel">
      <div className="panel-head">
        <h2>Symbols</h2>
        <span className="muted">{symbols.length}</span>
      </div>
      <div className="scroll">
        <table className="grid symbols" data-testid="symbol-list">
          <thead>
            <tr>
              <th>Symbol</th>
              <th className="num">Last</th>
              <th className="num">Chg %</th>
              <th className="num">SMA-10</th>
              <th className="num">VWAP-1m</th>
              <th className="num">Vol-1m</th>
            </tr>
          </thead>
          <tbody>
            {symbols.map((symbol) => (
              <SymbolRow key={symbol} symbol={symbol} selected={symbol === selected} onSelect={onSelect} />
            ))}
            {symbols.length === 0 && (
              <tr>
                <td colSpan={6} className="muted">
                  waiting for symbols…
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}

interface RowProps {
  symbol: string;
  selected: boolean;
  onSelect: (symbol: string) => void;
}

const SymbolRow = memo(function SymbolRow({ symbol, selected, onSelect }: RowProps) {
  const dashboard = useDashboard();
  useKeyedSignal(dashboard.market.rowChanged, symbol);
  const row = dashboard.market.row(symbol);
  if (!row) return null;
  const dir = row.direction ?? "flat";
  const changeClass = row.changePct === null ? "" : row.changePct > 0 ? "up" : row.changePct < 0 ? "down" : "";
  return (
    <tr
      data-testid={`symbol-row-${symbol}`}
      className={selected ? "selected" : undefined}
      onClick={() => onSelect(symbol)}
      aria-selected={selected}
    >
      <td className="sym">{symbol}</td>
      <td className={`num price ${dir}`} data-testid={`symbol-price-${symbol}`} data-direction={dir}>
        {/* keyed by the change count so the flash animation restarts on every change */}
        <span key={row.changeSeq} className={row.changeSeq ? `flash-${dir}` : undefined}>
          {fmtPrice(row.price)}
        </span>
      </td>
      <td className={`num ${changeClass}`}>{fmtPct(row.changePct)}</td>
      <td className="num">{fmtPrice(row.sma10)}</td>
      <td className="num">{fmtPrice(row.vwap1m)}</td>
      <td className="num">{fmtNum(row.volume1m, 2)}</td>
    </tr>
  );
});
