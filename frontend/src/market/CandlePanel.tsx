import { useEffect, useRef, useState } from "react";
import { INTERVALS, type Interval } from "../api/types";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { CandleChart } from "./candleChart";
import { INTERVAL_MS } from "./candles";
import { CandleSync } from "./candleSync";
import { chartSummary } from "./chartLegend";

const CANDLE_LIMIT = 500;

export function CandlePanel({ symbol }: { symbol: string | null }) {
  const dashboard = useDashboard();
  const [interval, chooseInterval] = useState<Interval>("1m");
  const [status, setStatus] = useState<string | null>(null);
  const containerRef = useRef<HTMLDivElement>(null);
  const [chart, setChart] = useState<CandleChart | null>(null);
  useSignal(dashboard.reloaded);
  const reloadSeq = dashboard.reloadSeq;

  useEffect(() => {
    if (!containerRef.current) return;
    const made = new CandleChart(containerRef.current, dashboard.coalescer);
    setChart(made);
    return () => {
      setChart(null);
      made.destroy();
    };
  }, [dashboard]);

  useEffect(() => {
    if (!chart || !symbol) return;
    let current = true; // a load answered after a switch must not set the new chart's status
    chart.clear();
    setStatus("loading…");
    const sync = new CandleSync({
      fetch: async (limit) => {
        const res = await dashboard.api.candles(symbol, interval, limit);
        chart.setTickSize(res.tick_size);
        return res.candles;
      },
      sink: chart,
      intervalMs: INTERVAL_MS[interval],
      limit: CANDLE_LIMIT,
      onRefreshError: (err) => console.warn("candles refetch failed", symbol, interval, err),
    });
    // Live candles are merged once per frame: the store flushes viewChanged per frame.
    const pushLive = () => sync.live(dashboard.market.view(symbol)?.candles?.[interval]);
    const unsubscribe = dashboard.market.viewChanged.subscribe(symbol, pushLive);
    // Bars may have closed unseen while the stream was down or the tab hidden: refetch the recent ones.
    let streamState = dashboard.system.sseState;
    const unsubscribeState = dashboard.system.changed.subscribe(() => {
      const next = dashboard.system.sseState;
      if (next === "live" && streamState !== "live") void sync.refresh();
      streamState = next;
    });
    const onVisible = () => {
      if (document.visibilityState === "visible") void sync.refresh();
    };
    document.addEventListener("visibilitychange", onVisible);
    sync
      .load()
      .then(() => current && setStatus(sync.barCount ? null : "no candles yet"))
      .catch((err: unknown) => {
        if (current) setStatus(`candles unavailable: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(pushLive);
    return () => {
      current = false;
      sync.stop();
      unsubscribe();
      unsubscribeState();
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, [dashboard, chart, symbol, interval, reloadSeq]);

  return (
    <section className="panel chart-panel">
      <div className="panel-head">
        <h2>{symbol ?? "—"} candles (UTC)</h2>
        <div className="buttons">
          {INTERVALS.map((iv) => (
            <button
              key={iv}
              type="button"
              data-testid={`interval-${iv}`}
              className={iv === interval ? "active" : ""}
              aria-pressed={iv === interval}
              onClick={() => chooseInterval(iv)}
            >
              {iv}
            </button>
          ))}
        </div>
      </div>
      <div className="chart-wrap">
        <div
          className="chart"
          data-testid="chart"
          data-interval={interval}
          ref={containerRef}
          role="img"
          aria-label={`${symbol ?? "no symbol"} ${interval} candle chart`}
          aria-describedby="chart-summary"
        />
        {chart && <ChartSummary chart={chart} interval={interval} />}
        {chart && symbol && <ChartLegend chart={chart} symbol={symbol} interval={interval} />}
        {status && <div className="chart-status">{status}</div>}
      </div>
      <div className="small muted chart-credit">
        Charts by{" "}
        <a href="https://www.tradingview.com/" target="_blank" rel="noopener noreferrer">
          TradingView Lightweight Charts
        </a>
      </div>
    </section>
  );
}

/** The chart in words for screen readers (the canvas says nothing): bars, span change, range, last close. */
function ChartSummary({ chart, interval }: { chart: CandleChart; interval: Interval }) {
  useSignal(chart.legendChanged);
  return (
    <p id="chart-summary" className="sr-only" data-testid="chart-summary">
      {chartSummary(chart.barsHeld, interval, chart.priceFormat)}
    </p>
  );
}

/** O/H/L/C, change and volume of the hovered bar (else the newest), over the price pane. */
function ChartLegend({ chart, symbol, interval }: { chart: CandleChart; symbol: string; interval: Interval }) {
  useSignal(chart.legendChanged);
  const legend = chart.legend;
  if (!legend) return null;
  return (
    <div className="chart-legend" data-testid="chart-legend">
      <span className="legend-title">
        {symbol} · {interval} · {legend.time}
      </span>
      <span className={`legend-values ${legend.direction}`}>
        <Field label="O" value={legend.open} />
        <Field label="H" value={legend.high} />
        <Field label="L" value={legend.low} />
        <Field label="C" value={legend.close} />
        <span data-testid="legend-change">{legend.change}</span>
        <Field label="Vol" value={legend.volume} />
      </span>
    </div>
  );
}

function Field({ label, value }: { label: string; value: string }) {
  return (
    <span>
      <span className="legend-label">{label}</span>
      {value}
    </span>
  );
}
