// @vitest-environment jsdom
// (TanStack Query schedules no polling where there is no window: this runs in jsdom.)
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SYSTEM_POLL_MS } from "../api/queries";
import { makeSystemStatus } from "../test/factories";
import { FakeEventSource, ManualFrames, fakeApi } from "../test/fakes";
import { Dashboard } from "./dashboard";

const CONFIG = { apiBaseUrl: "http://gw/api", streamUrl: "http://gw/stream", public: false };

function setVisibility(state: "visible" | "hidden"): void {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange", { bubbles: true })); // as browsers fire it
}

describe("Dashboard polling", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    setVisibility("visible");
    vi.useRealTimers();
  });

  it("polls /system while the tab is shown, not while it is hidden, and asks again on its return", async () => {
    const api = fakeApi(CONFIG.apiBaseUrl, { "/symbols/views": { symbols: [] }, "/system": makeSystemStatus() });
    const dashboard = new Dashboard(CONFIG, { EventSource: FakeEventSource, fetch: api.fetchFn, requestFrame: new ManualFrames().request });
    const polls = () => api.asked.filter((p) => p === "/system").length;
    dashboard.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(polls()).toBe(1);
    await vi.advanceTimersByTimeAsync(SYSTEM_POLL_MS);
    expect(polls()).toBe(2);
    setVisibility("hidden");
    await vi.advanceTimersByTimeAsync(5 * SYSTEM_POLL_MS);
    expect(polls()).toBe(2);
    setVisibility("visible");
    await vi.advanceTimersByTimeAsync(10);
    expect(polls()).toBe(3);
    dashboard.stop();
  });
});
