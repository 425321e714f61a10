import { useEffect, useRef, useState } from "react";
import { INTERVALS, type Interval } from "../api/types";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { CandleChart } from "./candleChart";

const CANDLE_LIMIT = 500;

export function CandlePanel({ symbol }: { symbol: string | null }) {
  const dashboard = useDashboard();
  const [interval, chooseInterval] = useState<Interval>("1m");
  const [status, setStatus] = useState<string | null>(null);
  const containerRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<CandleChart | null>(null);
  useSignal(dashboard.reloaded);
  const reloadSeq = dashboard.reloadSeq;

  useEffect(() => {
    if (!containerRef.current) return;
    const chart = new CandleChart(containerRef.current);
    chartRef.current = chart;
    return () => {
      chartRef.current = null;
      chart.destroy();
    };
  }, []);

  useEffect(() => {
    const chart = chartRef.current;
    if (!chart || !symbol) return;
    let cancelled = false;
    chart.clear();
    setStatus("loading…");
    const pushLive = () => chart.live(dashboard.market.view(symbol)?.candles?.[interval]);
    // Live candles are merged once per frame: the store flushes viewChanged per frame.
    const unsubscribe = dashboard.market.viewChanged.subscribe(symbol, pushLive);
    dashboard.api
      .candles(symbol, interval, CANDLE_LIMIT)
      .then((res) => {
        if (cancelled) return;
        chart.load(res.candles);
        pushLive();
        setStatus(chart.barCount ? null : "no candles yet");
      })
      .catch((err: unknown) => {
        if (cancelled) return;
        chart.load([]);
        pushLive();
        setStatus(`candles unavailable: ${err instanceof Error ? err.message : String(err)}`);
      });
    return () => {
      cancelled = true;
      unsubscribe();
    };
  }, [dashboard, symbol, interval, reloadSeq]);

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
        <div className="chart" data-testid="chart" data-interval={interval} ref={containerRef} />
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
