// @vitest-environment jsdom
import { act, cleanup, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SymbolView } from "../api/types";
import type { Dashboard } from "../app/dashboard";
import { makeView } from "../test/factories";
import { FakeEventSource, envelope } from "../test/fakes";
import { renderDashboard } from "../test/renderDashboard";
import { dayStart } from "./marketStore";
import { SymbolList } from "./SymbolList";

const SYMBOLS = ["BTCUSDT", "ETHUSDT", "EURUSD"];

function setup() {
  const ts = Date.now();
  const views: Record<string, SymbolView> = {
    BTCUSDT: makeView({ symbol: "BTCUSDT", price: 62_500, volume_1m: 3_913_881_620, ts }),
    ETHUSDT: makeView({ symbol: "ETHUSDT", price: 2_970, volume_1m: 1_234, ts }),
    EURUSD: makeView({ symbol: "EURUSD", price: 1.0846, volume_1m: 12, ts }),
  };
  const opens: Record<string, number> = { BTCUSDT: 50_000, ETHUSDT: 3_000, EURUSD: 1.0846 };
  const ticks: Record<string, number> = { BTCUSDT: 0.01, ETHUSDT: 0.01, EURUSD: 0.00001 };
  const dashboard = renderDashboard(
    {
      "/symbols/views": {
        symbols: SYMBOLS.map((symbol) => ({
          symbol,
          tick_size: ticks[symbol],
          view: views[symbol],
          session: { start: dayStart(ts), open: opens[symbol] },
        })),
      },
    },
    <SymbolList />,
  );
  return { dashboard, stream: FakeEventSource.last() };
}

const row = (symbol: string) => screen.getByTestId(`symbol-row-${symbol}`);

describe("SymbolList", () => {
  let dashboard: Dashboard;
  beforeEach(() => FakeEventSource.reset());
  afterEach(() => {
    cleanup();
    dashboard.stop();
  });

  it("shows each symbol's change on the day with its sign, and volumes compact", async () => {
    ({ dashboard } = setup());
    await waitFor(() => expect(within(row("BTCUSDT")).getByTestId("symbol-day-BTCUSDT").textContent).toBe("+25.00%"));
    expect(screen.getByTestId("symbol-day-ETHUSDT").textContent).toBe("\u22121.00%");
    expect(screen.getByTestId("symbol-day-EURUSD").textContent).toBe("0.00%");
    expect(screen.getByTestId("symbol-volume-BTCUSDT").textContent).toBe("3.91B");
    expect(screen.getByTestId("symbol-price-BTCUSDT").textContent).toContain("62,500.00");
    expect(screen.getByTestId("symbol-price-EURUSD").textContent).toContain("1.08460"); // its tick size: 0.00001
    expect(screen.getByRole("columnheader", { name: "Day %" })).toBeTruthy();
  });

  it("dims prices with their time while the stream is not live, and brightens them once it is", async () => {
    let stream: FakeEventSource;
    ({ dashboard, stream } = setup());
    await waitFor(() => expect(row("BTCUSDT").dataset.stale).toBe("true"));
    const ts = dashboard.market.view("BTCUSDT")?.ts ?? 0;
    expect(screen.getByTestId("symbol-asof-BTCUSDT").textContent).toBe(`as of ${new Date(ts).toISOString().slice(11, 19)}`);
    act(() => stream.open());
    await waitFor(() => expect(row("BTCUSDT").dataset.stale).toBe("false"));
    expect(screen.queryByTestId("symbol-asof-BTCUSDT")).toBeNull();
    // A price that moves shows an arrow as well as its colour.
    const view = makeView({ symbol: "BTCUSDT", version: 2, price: 62_400, ts: Date.now() });
    act(() => stream.emit("symbol.updated", envelope("symbol.updated", "2-0", { symbol: "BTCUSDT", view, ts: view.ts }), "2-0"));
    await waitFor(() => expect(screen.getByTestId("symbol-price-BTCUSDT").textContent).toContain("▼down"));
    act(() => stream.fail());
    await waitFor(() => expect(row("BTCUSDT").dataset.stale).toBe("true"));
  });

  it("is one tab stop: Tab reaches the selected row, arrows move, Enter selects", async () => {
    ({ dashboard } = setup());
    await waitFor(() => expect(row("BTCUSDT").getAttribute("aria-selected")).toBe("true"));
    expect(SYMBOLS.map((s) => row(s).tabIndex)).toEqual([0, -1, -1]);
    const user = userEvent.setup();
    await user.tab();
    expect(document.activeElement).toBe(row("BTCUSDT"));
    await user.keyboard("{ArrowDown}{ArrowDown}{ArrowDown}");
    expect(document.activeElement).toBe(row("EURUSD")); // stops at the last row
    expect(dashboard.market.selected).toBe("BTCUSDT"); // moving does not select
    await user.keyboard("{ArrowUp}{Enter}");
    expect(dashboard.market.selected).toBe("ETHUSDT");
    await waitFor(() => expect(row("ETHUSDT").getAttribute("aria-selected")).toBe("true"));
    expect(row("BTCUSDT").getAttribute("aria-selected")).toBe("false");
    await user.keyboard("{Home} ");
    expect(dashboard.market.selected).toBe("BTCUSDT");
  });
});
