import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { CandlePanel } from "./CandlePanel";
import { HistoryTable } from "./HistoryTable";
import { SymbolDetail } from "./SymbolDetail";
import { SymbolList } from "./SymbolList";
import { Tape } from "./Tape";

export function MarketView() {
  const dashboard = useDashboard();
  useSignal(dashboard.market.list);
  const symbol = dashboard.market.selected;
  return (
    // The chart's column is the widest; the tape fills the space under the symbol list.
    <div className="market">
      <div className="market-side">
        <SymbolList />
        <Tape />
      </div>
      <div className="market-center">
        {symbol && <SymbolDetail symbol={symbol} />}
        <CandlePanel symbol={symbol} />
        {symbol && <HistoryTable symbol={symbol} />}
      </div>
    </div>
  );
}
