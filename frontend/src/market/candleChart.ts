// The candlestick + volume chart (lightweight-charts v5), outside React.
// `load` sets the history; `live` merges the view's current candle (called at
// most once per frame, from the store's flush) with series.update.
import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  createChart,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Candle } from "../api/types";
import { MAX_BARS, mergeCandle, normaliseCandles, trimBars } from "./candles";

const UP = "#26a69a";
const DOWN = "#ef5350";

function toBar(c: Candle): CandlestickData<UTCTimestamp> {
  return { time: (c.t / 1000) as UTCTimestamp, open: c.open, high: c.high, low: c.low, close: c.close };
}

function toVolume(c: Candle): HistogramData<UTCTimestamp> {
  return {
    time: (c.t / 1000) as UTCTimestamp,
    value: c.volume,
    color: c.close >= c.open ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)",
  };
}

export class CandleChart {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private bars: Candle[] = [];
  private loaded = false;
  private pending: Candle | null = null; // a live candle that came while history was loading

  constructor(container: HTMLElement) {
    this.chart = createChart(container, {
      autoSize: true,
      // The library's logo comes with an inline <style>, which the page's CSP (style-src 'self') refuses;
      // CandlePanel links TradingView in text instead (the attribution its licence asks for).
      layout: {
        background: { type: ColorType.Solid, color: "#131722" },
        textColor: "#c7ccd6",
        attributionLogo: false,
      },
      grid: { vertLines: { color: "#1f2533" }, horzLines: { color: "#1f2533" } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a3142" },
      rightPriceScale: { borderColor: "#2a3142" },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
    this.volume = this.chart.addSeries(HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  }

  /** Forget the data (symbol or interval changed); live candles wait for the next load. */
  clear(): void {
    this.bars = [];
    this.loaded = false;
    this.pending = null;
    this.candles.setData([]);
    this.volume.setData([]);
  }

  load(history: readonly Candle[]): void {
    this.bars = normaliseCandles(history).slice(-MAX_BARS);
    this.loaded = true;
    this.setAll();
    this.chart.timeScale().scrollToRealTime();
    const pending = this.pending;
    this.pending = null;
    if (pending) this.live(pending);
  }

  get barCount(): number {
    return this.bars.length;
  }

  live(candle: Candle | null | undefined): void {
    if (!candle) return;
    if (!this.loaded) {
      if (!this.pending || candle.t >= this.pending.t) this.pending = candle;
      return;
    }
    const result = mergeCandle(this.bars, candle);
    if (result === "ignore") return;
    if (trimBars(this.bars)) {
      this.setAll();
      return;
    }
    this.candles.update(toBar(candle));
    this.volume.update(toVolume(candle));
  }

  destroy(): void {
    this.chart.remove();
  }

  private setAll(): void {
    this.candles.setData(this.bars.map(toBar));
    this.volume.setData(this.bars.map(toVolume));
  }
}
