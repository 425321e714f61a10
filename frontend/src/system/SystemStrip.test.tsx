// @vitest-environment jsdom
import { act, cleanup, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { AlertAnnouncer } from "../pipeline/AlertAnnouncer";
import { makeAlert, makeView } from "../test/factories";
import { FakeEventSource, envelope } from "../test/fakes";
import { renderDashboard } from "../test/renderDashboard";
import { SystemStrip } from "./SystemStrip";

describe("the status strip and the live region", () => {
  afterEach(cleanup);

  it("speaks alerts only: the strip, which changes all the time, is no live region", async () => {
    FakeEventSource.reset();
    const dashboard = renderDashboard(
      { "/symbols/views": { symbols: [] } },
      <>
        <SystemStrip />
        <AlertAnnouncer />
      </>,
    );
    const stream = FakeEventSource.last();
    act(() => stream.open());
    const view = makeView({ latency_ms: 42 });
    act(() => stream.emit("symbol.updated", envelope("symbol.updated", "1-0", { symbol: "BTCUSDT", view, ts: view.ts }), "1-0"));
    await waitFor(() => expect(screen.getByTestId("ingest-latency").textContent).toBe("42 ms"));
    const regions = screen.getAllByRole("status");
    expect(regions).toEqual([screen.getByTestId("alert-announcer")]);
    expect(regions[0]?.textContent).toBe("");
    const alert = makeAlert({ rule: "dlq_per_min", message: "3 dead letters in the last minute > 0" });
    act(() => stream.emit("alert.fired", envelope("alert.fired", "2-0", alert), "2-0"));
    await waitFor(() => expect(regions[0]?.textContent).toBe("Alert fired: 3 dead letters in the last minute > 0"));
    dashboard.stop();
  });
});
