// The candlestick chart (lightweight-charts v5), outside React: candles in the price pane, volume in a pane
// of its own below (its own scale, no last-value label or price line: a volume is not a price level), the
// symbol's price format, and a legend (O/H/L/C, change, volume) of the hovered bar, else the newest, from
// subscribeCrosshairMove. It draws what CandleSync hands it (`replace`, `update`).
import {
  CandlestickSeries,
  ColorType,
  CrosshairMode,
  HistogramSeries,
  createChart,
  type CandlestickData,
  type HistogramData,
  type IChartApi,
  type ISeriesApi,
  type MouseEventParams,
  type UTCTimestamp,
} from "lightweight-charts";
import type { Candle } from "../api/types";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { lowerBound } from "./candles";
import type { CandleSink } from "./candleSync";
import { DEFAULT_TICK_SIZE, legendFor, priceFormat, type Legend, type PriceFormat } from "./chartLegend";

export const UP = "#26a69a";
export const DOWN = "#ef5350";
const VOLUME_UP = "rgba(38,166,154,0.45)";
const VOLUME_DOWN = "rgba(239,83,80,0.45)";
// Bar spacing: the library's 6 px made a few bars a sliver at the right edge of an empty chart. A series
// too short to fill the chart at BAR_SPACING_PX is laid out from the left edge over at least MIN_SLOTS bars
// (~22 px each on a 900 px chart), so it fills in from the left as a session does; a longer one scrolls
// with the newest bar RIGHT_OFFSET_BARS in from the right edge (its time label is not clipped).
const BAR_SPACING_PX = 10;
const MIN_SLOTS = 40;
const LEFT_PAD_BARS = 1.5;
const RIGHT_OFFSET_BARS = 5;
const VOLUME_PANE_SHARE = 0.22; // of the chart's height

function toBar(c: Candle): CandlestickData<UTCTimestamp> {
  return { time: (c.t / 1000) as UTCTimestamp, open: c.open, high: c.high, low: c.low, close: c.close };
}

function toVolume(c: Candle): HistogramData<UTCTimestamp> {
  return { time: (c.t / 1000) as UTCTimestamp, value: c.volume, color: c.close >= c.open ? VOLUME_UP : VOLUME_DOWN };
}

export class CandleChart implements CandleSink {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<"Candlestick">;
  private readonly volume: ISeriesApi<"Histogram">;
  private bars: readonly Candle[] = [];
  private format: PriceFormat = priceFormat(DEFAULT_TICK_SIZE);
  private framed = -1; // the bar count the visible range was last laid out for (-1: new data)
  private hoveredT: number | null = null; // the bar under the crosshair (ms), null: the newest
  /** What the legend shows; `legendChanged` flushes once per frame at most. */
  legend: Legend | null = null;

  readonly legendChanged: Signal;

  constructor(container: HTMLElement, coalescer: FrameCoalescer) {
    this.legendChanged = new Signal(coalescer);
    this.chart = createChart(container, {
      autoSize: true,
      // The library's logo comes with an inline <style>, which the page's CSP (style-src 'self') refuses;
      // CandlePanel links TradingView in text instead (the attribution its licence asks for).
      layout: {
        background: { type: ColorType.Solid, color: "#131722" },
        textColor: "#c7ccd6",
        attributionLogo: false,
        panes: { separatorColor: "#2a3142", enableResize: false },
      },
      grid: { vertLines: { color: "#1f2533" }, horzLines: { color: "#1f2533" } },
      timeScale: {
        timeVisible: true,
        secondsVisible: false,
        borderColor: "#2a3142",
        barSpacing: BAR_SPACING_PX,
        rightOffset: RIGHT_OFFSET_BARS,
      },
      rightPriceScale: { borderColor: "#2a3142" },
      crosshair: { mode: CrosshairMode.Normal },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderVisible: false,
      wickUpColor: UP,
      wickDownColor: DOWN,
      priceFormat: { type: "price", ...this.format },
    });
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.16, bottom: 0.06 } }); // room for the legend
    this.volume = this.chart.addSeries(
      HistogramSeries,
      { priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false },
      1,
    );
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.15, bottom: 0 } });
    const [pricePane, volumePane] = this.chart.panes();
    pricePane?.setStretchFactor(1 - VOLUME_PANE_SHARE);
    volumePane?.setStretchFactor(VOLUME_PANE_SHARE);
    this.chart.subscribeCrosshairMove(this.onCrosshair);
  }

  /** Prices in the symbol's format: decimals and minimum move from its tick size. */
  setTickSize(tickSize: number): void {
    const next = priceFormat(tickSize);
    if (next.precision === this.format.precision && next.minMove === this.format.minMove) return;
    this.format = next;
    this.candles.applyOptions({ priceFormat: { type: "price", ...next } });
    this.refreshLegend();
  }

  get priceFormat(): PriceFormat {
    return this.format;
  }

  /** The bars drawn, oldest first (they change when `legendChanged` fires). */
  get barsHeld(): readonly Candle[] {
    return this.bars;
  }

  /** Forget the data (symbol or interval changed). */
  clear(): void {
    this.replace([]);
  }

  replace(bars: readonly Candle[]): void {
    this.bars = bars;
    this.candles.setData(bars.map(toBar));
    this.volume.setData(bars.map(toVolume));
    this.framed = -1;
    this.frame();
    this.refreshLegend();
  }

  update(bar: Candle, historical: boolean): void {
    this.candles.update(toBar(bar), historical);
    this.volume.update(toVolume(bar), historical);
    this.frame();
    this.refreshLegend();
  }

  /** Lay a short series out from the left edge (again when it grows); a long one follows the newest bar. */
  private frame(): void {
    const n = this.bars.length;
    if (n === 0 || n === this.framed) return;
    const timeScale = this.chart.timeScale();
    const width = timeScale.width() || 600; // 0 before the first layout
    const slots = Math.max(MIN_SLOTS, n + RIGHT_OFFSET_BARS);
    const fresh = this.framed < 0;
    this.framed = n;
    if (slots * BAR_SPACING_PX <= width) {
      timeScale.setVisibleLogicalRange({ from: -LEFT_PAD_BARS, to: slots - LEFT_PAD_BARS });
    } else if (fresh) {
      timeScale.applyOptions({ barSpacing: BAR_SPACING_PX });
      timeScale.scrollToRealTime();
    }
  }

  destroy(): void {
    this.chart.unsubscribeCrosshairMove(this.onCrosshair);
    this.chart.remove();
  }

  private readonly onCrosshair = (param: MouseEventParams): void => {
    const t = typeof param.time === "number" && param.point ? param.time * 1000 : null;
    if (t === this.hoveredT) return;
    this.hoveredT = t;
    this.refreshLegend();
  };

  private refreshLegend(): void {
    const bars = this.bars;
    let i = bars.length - 1;
    if (this.hoveredT !== null) {
      const at = lowerBound(bars, this.hoveredT);
      if (bars[at]?.t === this.hoveredT) i = at;
    }
    const bar = bars[i];
    this.legend = bar ? legendFor(bar, bars[i - 1] ?? null, this.format) : null;
    this.legendChanged.markDirty();
  }
}
