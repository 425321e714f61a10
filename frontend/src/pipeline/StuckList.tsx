import type { RttmSnapshot, StuckResponse } from "../api/types";
import { DASH, fmtAge, fmtNum } from "../util/format";

interface Props {
  snapshot: RttmSnapshot | null;
  stuck: StuckResponse | null;
  now: number;
  onTrade: (tradeId: string) => void;
}

export function StuckList({ snapshot, stuck, now, onTrade }: Props) {
  const count = snapshot?.stuck?.count ?? stuck?.count ?? null;
  const threshold = snapshot?.stuck?.threshold_s ?? stuck?.threshold_s;
  const trades = stuck?.trades ?? [];
  return (
    <section className="panel stuck-panel">
      <div className="panel-head">
        <h2>Stuck trades</h2>
        <span className="muted">
          {fmtNum(count)} with no event for {threshold ?? "—"} s
        </span>
      </div>
      <ul className="stuck" data-testid="stuck-list" data-count={count ?? 0}>
        {trades.map((t) => (
          <li key={t.trade_id}>
            <button type="button" className="link" onClick={() => onTrade(t.trade_id)}>
              {t.trade_id}
            </button>
            <span className="muted">
              {t.last_service ?? DASH} · {t.last_event_type ?? DASH} · {fmtAge(t.last_event_time, now)}
            </span>
          </li>
        ))}
        {trades.length === 0 && <li className="muted">none</li>}
      </ul>
    </section>
  );
}
