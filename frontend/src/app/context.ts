import { createContext, useContext } from "react";
import type { Dashboard } from "./dashboard";

export const DashboardContext = createContext<Dashboard | null>(null);

export function useDashboard(): Dashboard {
  const dashboard = useContext(DashboardContext);
  if (!dashboard) throw new Error("useDashboard outside DashboardContext");
  return dashboard;
}
