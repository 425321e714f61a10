import { QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot, type Root } from "react-dom/client";
import { App } from "./app/App";
import { DashboardContext } from "./app/context";
import { Dashboard } from "./app/dashboard";
import { ErrorPanel } from "./app/ErrorPanel";
import { loadConfig } from "./config/loadConfig";
import "./styles.css";

async function boot(root: Root): Promise<void> {
  let config;
  try {
    config = await loadConfig(window.location.href);
  } catch (err) {
    root.render(
      <ErrorPanel
        title="Configuration unavailable"
        message={err instanceof Error ? err.message : String(err)}
        hint="The dashboard needs config.json beside the page: the gateway serves it; a static host must ship one (npm run config)."
        onRetry={() => void boot(root)}
      />,
    );
    return;
  }
  const dashboard = new Dashboard(config, { EventSource: window.EventSource });
  dashboard.start();
  window.addEventListener("pagehide", () => dashboard.stop());
  root.render(
    <StrictMode>
      <QueryClientProvider client={dashboard.queryClient}>
        <DashboardContext.Provider value={dashboard}>
          <App />
        </DashboardContext.Provider>
      </QueryClientProvider>
    </StrictMode>,
  );
}

const container = document.getElementById("root");
if (container) void boot(createRoot(container));
