import { memo, useCallback, useRef, useState, type KeyboardEvent } from "react";
import { useDashboard } from "../app/context";
import { useKeyedSignal, useSignal } from "../store/useSignal";
import { fmtClock, fmtCompact, fmtPct, fmtPrice } from "../util/format";
import type { Direction } from "./marketStore";

const ARROW: Record<Exclude<Direction, null>, string> = { up: "▲", down: "▼" };

// The list re-renders only when the set of symbols or the selection changes; each row re-renders (a few
// times a second at most) only when its own symbol changed. Keyboard: Tab reaches the selected row (one tab
// stop for the list), arrows, Home and End move, Enter or Space selects.
export function SymbolList() {
  const dashboard = useDashboard();
  useSignal(dashboard.market.list);
  const symbols = dashboard.market.symbols();
  const selected = dashboard.market.selected;
  const [focused, setFocused] = useState<string | null>(null);
  const rows = useRef(new Map<string, HTMLTableRowElement>());
  const onSelect = useCallback((symbol: string) => dashboard.selectSymbol(symbol), [dashboard]);
  const register = useCallback((symbol: string, el: HTMLTableRowElement | null) => {
    if (el) rows.current.set(symbol, el);
    else rows.current.delete(symbol);
  }, []);
  const onKey = useCallback(
    (symbol: string, e: KeyboardEvent<HTMLTableRowElement>) => {
      const list = dashboard.market.symbols();
      const at = list.indexOf(symbol);
      let next: string | undefined;
      if (e.key === "ArrowDown") next = list[Math.min(at + 1, list.length - 1)];
      else if (e.key === "ArrowUp") next = list[Math.max(at - 1, 0)];
      else if (e.key === "Home") next = list[0];
      else if (e.key === "End") next = list[list.length - 1];
      else if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        onSelect(symbol);
        return;
      } else return;
      e.preventDefault();
      if (next === undefined) return;
      setFocused(next);
      rows.current.get(next)?.focus();
    },
    [dashboard, onSelect],
  );
  const tabStop = focused !== null && symbols.includes(focused) ? focused : (selected ?? symbols[0] ?? null);
  return (
    <section className="panel symbols-panel" aria-labelledby="symbols-title">
      <div className="panel-head">
        <h2 id="symbols-title">Symbols</h2>
        <span className="muted">{symbols.length}</span>
      </div>
      <div className="scroll">
        <table className="grid symbols" data-testid="symbol-list" role="grid" aria-labelledby="symbols-title">
          <thead>
            <tr>
              <th scope="col">Symbol</th>
              <th scope="col" className="num">
                Last
              </th>
              <th scope="col" className="num" title="Change since the first price of the UTC day">
                Day %
              </th>
              <th scope="col" className="num" title="Volume-weighted average price over the last minute">
                VWAP 1m
              </th>
              <th scope="col" className="num" title="Volume traded in the last minute">
                Vol 1m
              </th>
            </tr>
          </thead>
          <tbody>
            {symbols.map((symbol) => (
              <SymbolRow
                key={symbol}
                symbol={symbol}
                selected={symbol === selected}
                tabbable={symbol === tabStop}
                onSelect={onSelect}
                onKey={onKey}
                register={register}
              />
            ))}
            {symbols.length === 0 && (
              <tr>
                <td colSpan={5} className="muted">
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
  tabbable: boolean;
  onSelect: (symbol: string) => void;
  onKey: (symbol: string, e: KeyboardEvent<HTMLTableRowElement>) => void;
  register: (symbol: string, el: HTMLTableRowElement | null) => void;
}

const SymbolRow = memo(function SymbolRow({ symbol, selected, tabbable, onSelect, onKey, register }: RowProps) {
  const dashboard = useDashboard();
  useKeyedSignal(dashboard.market.rowChanged, symbol);
  const row = dashboard.market.row(symbol);
  if (!row) return null;
  const dir = row.direction;
  const change = row.sessionChangePct;
  const changeClass = change === null || change === 0 ? "" : change > 0 ? "up" : "down";
  const classes = [selected ? "selected" : "", row.stale ? "stale" : ""].filter(Boolean).join(" ");
  return (
    <tr
      ref={(el) => register(symbol, el)}
      data-testid={`symbol-row-${symbol}`}
      data-stale={row.stale}
      className={classes || undefined}
      tabIndex={tabbable ? 0 : -1}
      aria-selected={selected}
      onClick={() => onSelect(symbol)}
      onKeyDown={(e) => onKey(symbol, e)}
    >
      <td className="sym">{symbol}</td>
      <td className={`num price ${dir ?? ""}`} data-testid={`symbol-price-${symbol}`} data-direction={dir ?? "flat"}>
        {dir && (
          <>
            <span className="arrow" aria-hidden="true">
              {ARROW[dir]}
            </span>
            <span className="sr-only">{dir}</span>
          </>
        )}{" "}
        {/* keyed by the flash count: the animation restarts only when the store starts a flash */}
        <span key={row.flashSeq} className={row.flashSeq && dir ? `flash-${dir}` : undefined}>
          {fmtPrice(row.price, row.tickSize)}
        </span>
        {row.stale && (
          <span className="as-of" data-testid={`symbol-asof-${symbol}`}>
            as of {fmtClock(row.ts)}
          </span>
        )}
      </td>
      <td className={`num ${changeClass}`} data-testid={`symbol-day-${symbol}`}>
        {fmtPct(change)}
      </td>
      <td className="num">{fmtPrice(row.vwap1m, row.tickSize)}</td>
      <td className="num" data-testid={`symbol-volume-${symbol}`}>
        {fmtCompact(row.volume1m)}
      </td>
    </tr>
  );
});
