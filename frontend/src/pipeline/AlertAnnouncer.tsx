import { useState } from "react";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";

/** The page's only live region: it speaks an alert's firing or resolving, nothing else (the status strip and
 * the prices change too often to be read out). Transitions from before the page opened are not spoken. */
export function AlertAnnouncer() {
  const dashboard = useDashboard();
  useSignal(dashboard.pipeline.alertsChanged);
  const [openedAt] = useState(() => Date.now());
  const latest = dashboard.pipeline.board.recent()[0];
  const text = latest && latest.at >= openedAt ? `Alert ${latest.rule} ${latest.kind}` : "";
  return (
    <div className="sr-only" role="status" aria-live="polite" data-testid="alert-announcer">
      {text}
    </div>
  );
}
