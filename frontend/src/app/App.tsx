import { useEffect, useState } from "react";
import { AlertAnnouncer } from "../pipeline/AlertAnnouncer";
import { MarketView } from "../market/MarketView";
import { PipelineView } from "../pipeline/PipelineView";
import { useSignal } from "../store/useSignal";
import { SystemStrip } from "../system/SystemStrip";
import { useDashboard } from "./context";
import { ErrorPanel } from "./ErrorPanel";

type Tab = "market" | "pipeline";

function tabFromHash(): Tab {
  return window.location.hash === "#pipeline" ? "pipeline" : "market";
}

export function App() {
  const dashboard = useDashboard();
  useSignal(dashboard.apiErrorChanged); // not the alerts: only the badge hears those (App re-renders rarely)
  const [tab, setTab] = useState<Tab>(tabFromHash);
  useEffect(() => {
    const onHash = () => setTab(tabFromHash());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  const choose = (next: Tab) => {
    setTab(next);
    history.replaceState(null, "", `#${next}`);
  };
  return (
    <div className="app">
      <header className="top">
        <h1>mdstack</h1>
        <nav className="tabs" role="tablist">
          <button type="button" role="tab" data-testid="tab-market" aria-selected={tab === "market"} className={tab === "market" ? "active" : ""} onClick={() => choose("market")}>
            Market
          </button>
          <button type="button" role="tab" data-testid="tab-pipeline" aria-selected={tab === "pipeline"} className={tab === "pipeline" ? "active" : ""} onClick={() => choose("pipeline")}>
            Pipeline
            <FiringBadge />
          </button>
        </nav>
        <SystemStrip />
      </header>
      <AlertAnnouncer />
      {dashboard.config.public && (
        <div className="public-banner" role="note" data-testid="public-banner">
          public demo: anyone with this URL can read it
        </div>
      )}
      {dashboard.apiError && (
        <ErrorPanel
          title="API unreachable"
          message={dashboard.apiError}
          hint={`The dashboard reads ${dashboard.config.apiBaseUrl} (from config.json); it retries every few seconds.`}
          onRetry={() => void dashboard.reload()}
        />
      )}
      <main>{tab === "market" ? <MarketView /> : <PipelineView />}</main>
    </div>
  );
}

function FiringBadge() {
  const dashboard = useDashboard();
  useSignal(dashboard.pipeline.alertsChanged);
  const firing = dashboard.pipeline.board.firingCount();
  return firing > 0 ? <span className="badge firing">{firing} firing</span> : null;
}
