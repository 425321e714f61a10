// The API's reads as TanStack Query options: one key per resource (per symbol, per trade id), so answers are
// cached and shared per key, concurrent asks are one request, an answer for an old key never lands on a newer
// one, polling pauses while the tab is hidden (refetchIntervalInBackground is off) and resumes on return.
import { QueryClient, queryOptions } from "@tanstack/react-query";
import type { ApiClient } from "./client";

export const SYSTEM_POLL_MS = 2_000; // GET /system: the status strip
export const LISTS_POLL_MS = 5_000; // GET /rttm/dlq and /rttm/stuck
export const HISTORY_POLL_MS = 5_000; // GET /symbols/{id}/history while the table is shown
export const LIST_LIMIT = 20; // DLQ entries and stuck trades shown
export const HISTORY_LIMIT = 100;

export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: 1, // the polled reads come round again by themselves; the error panel must not wait long
        staleTime: 1_000,
        gcTime: 60_000,
        refetchIntervalInBackground: false,
      },
    },
  });
}

/** Query options for each read of the API, built on the client. */
export function apiQueries(api: ApiClient) {
  return {
    snapshot: () =>
      // Always asked anew (a new symbol is not in the last one); asks at the same time share one request.
      queryOptions({ queryKey: ["symbols", "views"], queryFn: () => api.views(), staleTime: 0 }),
    system: () =>
      queryOptions({ queryKey: ["system"], queryFn: () => api.system(), refetchInterval: SYSTEM_POLL_MS, retry: false }),
    dlq: () =>
      queryOptions({ queryKey: ["rttm", "dlq", LIST_LIMIT], queryFn: () => api.dlq(LIST_LIMIT), refetchInterval: LISTS_POLL_MS }),
    stuck: () =>
      queryOptions({
        queryKey: ["rttm", "stuck", LIST_LIMIT],
        queryFn: () => api.stuck(LIST_LIMIT),
        refetchInterval: LISTS_POLL_MS,
      }),
    rttmMetrics: () => queryOptions({ queryKey: ["rttm", "metrics"], queryFn: () => api.rttmMetrics(), staleTime: 0 }),
    alerts: () => queryOptions({ queryKey: ["rttm", "alerts"], queryFn: () => api.alerts(), staleTime: 0 }),
    history: (symbol: string) =>
      queryOptions({
        queryKey: ["symbols", symbol, "history", HISTORY_LIMIT],
        queryFn: () => api.history(symbol, HISTORY_LIMIT),
        refetchInterval: HISTORY_POLL_MS,
      }),
    trade: (tradeId: string) =>
      queryOptions({ queryKey: ["rttm", "trades", tradeId], queryFn: () => api.trade(tradeId), staleTime: 5_000 }),
  };
}

export type ApiQueries = ReturnType<typeof apiQueries>;
