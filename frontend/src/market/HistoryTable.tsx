import { useEffect, useState } from "react";
import type { HistoryTick } from "../api/types";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { fmtDateTime, fmtNum, fmtPrice } from "../util/format";

export const HISTORY_LIMIT = 100;
export const HISTORY_REFRESH_MS = 5_000;

/** Stored ticks from Postgres, newest first: refetched on symbol change and every few seconds. */
export function HistoryTable({ symbol }: { symbol: string }) {
  const dashboard = useDashboard();
  useSignal(dashboard.reloaded);
  const reloadSeq = dashboard.reloadSeq;
  const [ticks, setTicks] = useState<HistoryTick[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    setTicks([]);
    const load = async () => {
      try {
        const res = await dashboard.api.history(symbol, HISTORY_LIMIT);
        if (cancelled) return;
        setTicks(res.ticks ?? []);
        setError(null);
      } catch (err) {
        if (!cancelled) setError(err instanceof Error ? err.message : String(err));
      }
      if (!cancelled) timer = setTimeout(load, HISTORY_REFRESH_MS);
    };
    void load();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [dashboard, symbol, reloadSeq]);

  return (
    <section className="panel history-panel">
      <div className="panel-head">
        <h2>History · {symbol}</h2>
        <span className="muted">stored ticks, newest first (UTC)</span>
      </div>
      {error && <p className="error-text">{error}</p>}
      <div className="scroll">
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
                <td className="num">{fmtPrice(t.price)}</td>
                <td className="num">{fmtNum(t.volume, 4)}</td>
                <td>{t.source}</td>
                <td className="mono small">{t.event_id}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {ticks.length === 0 && !error && <p className="muted pad">no stored ticks yet</p>}
      </div>
    </section>
  );
}
