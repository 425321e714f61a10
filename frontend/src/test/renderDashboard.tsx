// A started Dashboard on fakes (EventSource, fetch of fixed routes) and `ui` rendered inside its context.
import { render } from "@testing-library/react";
import type { ReactNode } from "react";
import { DashboardContext } from "../app/context";
import { Dashboard } from "../app/dashboard";
import { FakeEventSource, fakeApi } from "./fakes";

export const TEST_CONFIG = { apiBaseUrl: "http://gw/api", streamUrl: "http://gw/stream", public: false };

export function renderDashboard(routes: Record<string, unknown>, ui: ReactNode): Dashboard {
  const api = fakeApi(TEST_CONFIG.apiBaseUrl, routes);
  const dashboard = new Dashboard(TEST_CONFIG, {
    EventSource: FakeEventSource,
    fetch: api.fetchFn,
    requestFrame: (cb) => setTimeout(() => cb(Date.now()), 0),
  });
  dashboard.start();
  render(<DashboardContext.Provider value={dashboard}>{ui}</DashboardContext.Provider>);
  return dashboard;
}
