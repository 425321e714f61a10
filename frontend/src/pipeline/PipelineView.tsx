import { useCallback, useState } from "react";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { AlertsPanel } from "./AlertsPanel";
import { DepthPanel } from "./DepthPanel";
import { FailuresPanel } from "./FailuresPanel";
import { LatencyTable } from "./LatencyTable";
import { StuckList } from "./StuckList";
import { TpsPanel } from "./TpsPanel";
import { TradeLookup } from "./TradeLookup";

/** Re-renders when a snapshot arrives (about once a second) or the polled lists change. */
export function PipelineView() {
  const dashboard = useDashboard();
  useSignal(dashboard.pipeline.snapshotChanged);
  useSignal(dashboard.pipeline.listsChanged);
  const { snapshot, dlq, stuck } = dashboard.pipeline;
  const [requested, setRequested] = useState<{ tradeId: string; seq: number } | null>(null);
  const onTrade = useCallback((tradeId: string) => setRequested((r) => ({ tradeId, seq: (r?.seq ?? 0) + 1 })), []);
  return (
    <div className="pipeline">
      {!snapshot && <p className="notice">No pipeline snapshot yet: a worker publishes one every second once trade events flow.</p>}
      <TpsPanel snapshot={snapshot} />
      <LatencyTable snapshot={snapshot} />
      <AlertsPanel />
      <DepthPanel snapshot={snapshot} />
      <FailuresPanel snapshot={snapshot} dlq={dlq} onTrade={onTrade} />
      <StuckList snapshot={snapshot} stuck={stuck} now={snapshot?.computed_at ?? Date.now()} onTrade={onTrade} />
      <TradeLookup requested={requested} />
    </div>
  );
}
