import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";

/** The page's only live region: it speaks an alert firing or resolving on the stream, nothing else (the status
 * strip and the prices change too often to be read out). */
export function AlertAnnouncer() {
  const dashboard = useDashboard();
  useSignal(dashboard.pipeline.alertsChanged);
  return (
    <div className="sr-only" role="status" data-testid="alert-announcer">
      {dashboard.pipeline.announcement ?? ""}
    </div>
  );
}
