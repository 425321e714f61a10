import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { fmtMs, fmtNum } from "../util/format";

/** Always visible: stream state, ingest rate, ingest-to-view latency, queue depth. Not a live region: it
 * changes several times a second, and a screen reader would read it out each time (AlertAnnouncer speaks). */
export function SystemStrip() {
  const dashboard = useDashboard();
  useSignal(dashboard.system.changed);
  const { sseState, latencyMs, status, statusError, ingestRate } = dashboard.system;
  return (
    <div className="system-strip" aria-label="System status">
      <span className="item">
        <span className={`dot ${sseState}`} />
        stream <strong data-testid="sse-state" className={`sse ${sseState}`}>{sseState}</strong>
      </span>
      <span className="item">
        ingest <strong data-testid="ingest-rate">{ingestRate === null ? "—" : fmtNum(ingestRate, 0)}</strong> ticks/s
      </span>
      <span className="item">
        ingest→view <strong data-testid="ingest-latency">{fmtMs(latencyMs)}</strong>
      </span>
      <span className="item" title={status ? `started ${status.queue.started}, scheduled ${status.queue.scheduled}` : undefined}>
        queue <strong data-testid="queue-depth">{status ? fmtNum(status.queue.queued) : "—"}</strong>
        {status && status.queue.failed > 0 && <span className="down"> ({fmtNum(status.queue.failed)} failed)</span>}
      </span>
      <span className="item">
        flush backlog <strong data-testid="flush-backlog">{status ? fmtNum(status.flush_backlog) : "—"}</strong>
      </span>
      {statusError && (
        <span className="item error-text" title={statusError}>
          /system unavailable
        </span>
      )}
    </div>
  );
}
