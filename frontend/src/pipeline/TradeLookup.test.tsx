// @vitest-environment jsdom
import { QueryClientProvider } from "@tanstack/react-query";
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import type { TradeTrace } from "../api/types";
import { DashboardContext } from "../app/context";
import { Dashboard } from "../app/dashboard";
import { FakeEventSource } from "../test/fakes";
import { TradeLookup } from "./TradeLookup";

const CONFIG = { apiBaseUrl: "http://gw/api", streamUrl: "http://gw/stream", public: false };

function trace(tradeId: string, status: TradeTrace["status"]): TradeTrace {
  return { trade_id: tradeId, status, events: [], end_to_end_ms: 12, dlq: [], errors: [] };
}

describe("TradeLookup", () => {
  afterEach(cleanup);

  it("shows the trade asked last, even when the answer for the one before comes after it", async () => {
    let answerSlow: (r: Response) => void = () => {};
    const slow = new Promise<Response>((resolve) => (answerSlow = resolve));
    const fetchFn = async (url: string) => {
      if (url.endsWith("/rttm/trades/SLOW")) return slow;
      if (url.endsWith("/rttm/trades/FAST")) return new Response(JSON.stringify(trace("FAST", "completed")));
      return new Response("{}", { status: 404 });
    };
    const dashboard = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: fetchFn });
    render(
      <QueryClientProvider client={dashboard.queryClient}>
        <DashboardContext.Provider value={dashboard}>
          <TradeLookup requested={null} />
        </DashboardContext.Provider>
      </QueryClientProvider>,
    );
    const user = userEvent.setup();
    const input = screen.getByRole("textbox", { name: "Trade id" });
    await user.type(input, "SLOW{Enter}");
    await waitFor(() => expect(screen.getByTestId("trade-lookup-result").dataset.state).toBe("loading"));
    await user.clear(input);
    await user.type(input, "FAST{Enter}");
    await waitFor(() => expect(screen.getByTestId("trade-status").textContent).toBe("completed"));
    answerSlow(new Response(JSON.stringify(trace("SLOW", "failed"))));
    // The late answer has landed (in its own key's cache), and the trade shown is still the one asked last.
    await waitFor(() => expect(dashboard.queryClient.getQueryData(dashboard.queries.trade("SLOW").queryKey)).toBeTruthy());
    expect(screen.getByTestId("trade-lookup-result").textContent).toContain("FAST");
    expect(screen.getByTestId("trade-status").textContent).toBe("completed");
  });
});
