import { useQuery } from "@tanstack/react-query";
import { useDashboard } from "../app/context";
import { fmtDateTime, fmtPrice, fmtVolume } from "../util/format";
import { ScrollRegion } from "../app/ScrollRegion";

/** Stored ticks from Postgres, newest first: cached per symbol, refetched every few seconds while shown
 * (not while the tab is hidden), after a `reset` and on reconnect (the dashboard invalidates its queries). */
export function HistoryTable({ symbol }: { symbol: string }) {
  const dashboard = useDashboard();
  const query = useQuery(dashboard.queries.history(symbol));
  const tick = dashboard.market.tickSize(symbol);
  const ticks = query.data?.ticks ?? [];
  const error = query.error ? query.error.message : null;

  return (
    <section className="panel history-panel">
      <div className="panel-head">
        <h2>History · {symbol}</h2>
        <span className="muted">stored ticks, newest first (UTC)</span>
      </div>
      {error && <p className="error-text">{error}</p>}
      <ScrollRegion label="Stored ticks">
        <table className="grid" data-testid="history-table" data-count={ticks.length}>
          <thead>
            <tr>
              <th>Time</th>
              <th className="num">Price</th>
              <th className="num">Volume</th>
              <th>Source</th>
              <th>Event id</th>
            </tr>
          </thead>
          <tbody>
            {ticks.map((t) => (
              <tr key={t.event_id}>
                <td>{fmtDateTime(t.ts, true)}</td>
                <td className="num">{fmtPrice(t.price, tick)}</td>
                <td className="num">{fmtVolume(t.volume)}</td>
                <td>{t.source}</td>
                <td className="mono small">{t.event_id}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {ticks.length === 0 && !error && (
          <p className="muted pad">{query.isPending ? "loading…" : "no stored ticks yet"}</p>
        )}
      </ScrollRegion>
    </section>
  );
}
