import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { fmtDateTime, fmtNum } from "../util/format";

/** Active alerts (flash when they fire, fade when they resolve) and the recent transitions. */
export function AlertsPanel() {
  const dashboard = useDashboard();
  useSignal(dashboard.pipeline.alertsChanged);
  const board = dashboard.pipeline.board;
  const active = board.list();
  const log = board.recent();
  const firing = board.firingCount();
  return (
    <section className={`panel alerts-panel ${firing ? "has-firing" : ""}`}>
      <div className="panel-head">
        <h2>Alerts</h2>
        <span className={firing ? "badge firing" : "badge"}>{firing} firing</span>
      </div>
      <ul className="alerts" data-testid="alerts" data-firing={firing}>
        {active.map(({ alert, phase, seq }) => (
          <li
            key={`${alert.rule}-${seq}`}
            className={`alert ${phase}`}
            data-testid={`alert-${alert.rule}`}
            data-phase={phase}
          >
            <strong>{alert.rule}</strong>
            <span>{alert.message}</span>
            <span className="muted">
              {fmtNum(alert.value, 1)} &gt; {fmtNum(alert.threshold, 1)} · {phase === "firing" ? "since" : "resolved"}{" "}
              {fmtDateTime(phase === "firing" ? alert.fired_at : (alert.resolved_at ?? alert.fired_at))}
            </span>
          </li>
        ))}
        {active.length === 0 && <li className="muted">all clear</li>}
      </ul>
      <h3>Recent transitions</h3>
      <ol className="alert-log" data-testid="alerts-log">
        {log.map((t) => (
          <li key={t.seq} className={t.kind}>
            <span className="mono">{fmtDateTime(t.at)}</span> <strong>{t.rule}</strong> {t.kind}{" "}
            <span className="muted">
              ({fmtNum(t.value, 1)} / {fmtNum(t.threshold, 1)})
            </span>
          </li>
        ))}
        {log.length === 0 && <li className="muted">no transitions yet</li>}
      </ol>
    </section>
  );
}
