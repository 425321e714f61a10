import type { DlqEvent, RttmSnapshot } from "../api/types";
import { fmtDateTime, fmtNum } from "../util/format";
import { ScrollRegion } from "../app/ScrollRegion";

interface Props {
  snapshot: RttmSnapshot | null;
  dlq: readonly DlqEvent[];
  onTrade: (tradeId: string) => void;
}

/** DLQ and error counts, and the latest dead letters. */
export function FailuresPanel({ snapshot, dlq, onTrade }: Props) {
  const reasons = Object.entries(snapshot?.dlq?.by_reason ?? {}).sort((a, b) => b[1] - a[1]);
  const errorTypes = Object.entries(snapshot?.errors?.by_type ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <section className="panel failures-panel">
      <div className="panel-head">
        <h2>Dead letters &amp; errors</h2>
        <span className="muted">window {snapshot?.window_s ?? "—"} s</span>
      </div>
      <div className="counters">
        <div>
          <span className="counter" data-testid="dlq-count">
            {fmtNum(snapshot?.dlq?.in_window)}
          </span>
          <span className="label">DLQ in window ({fmtNum(snapshot?.dlq?.last_1m)} last 1m)</span>
        </div>
        <div>
          <span className="counter" data-testid="error-count">
            {fmtNum(snapshot?.errors?.in_window)}
          </span>
          <span className="label">errors in window ({fmtNum(snapshot?.errors?.last_1m)} last 1m)</span>
        </div>
      </div>
      <div className="chips">
        {reasons.map(([reason, n]) => (
          <span key={`r-${reason}`}>
            {reason}: {n}
          </span>
        ))}
        {errorTypes.map(([type, n]) => (
          <span key={`e-${type}`} className="chip-error">
            {type}: {n}
          </span>
        ))}
      </div>
      <ScrollRegion label="Dead letters">
        <table className="grid" data-testid="dlq-list">
          <thead>
            <tr>
              <th>Time</th>
              <th>Trade</th>
              <th>Service</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {dlq.map((e, i) => (
              <tr key={`${e.trade_id}-${e.event_time}-${i}`}>
                <td>{fmtDateTime(e.event_time)}</td>
                <td>
                  <button type="button" className="link" onClick={() => onTrade(e.trade_id)}>
                    {e.trade_id}
                  </button>
                </td>
                <td>{e.service_name}</td>
                <td>{e.reason}</td>
              </tr>
            ))}
            {dlq.length === 0 && (
              <tr>
                <td colSpan={4} className="muted">
                  no dead letters
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </ScrollRegion>
    </section>
  );
}
