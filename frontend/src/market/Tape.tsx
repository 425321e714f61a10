import { useEffect } from "react";
import { useDashboard } from "../app/context";
import { useSignal } from "../store/useSignal";
import { fmtPrice, fmtTime, fmtVolume } from "../util/format";
import { ScrollRegion } from "../app/ScrollRegion";

/** The live tape, a row per symbol and TICK_MERGE_MS (ticks.merged); its stream runs only while it is mounted. */
export function Tape() {
  const dashboard = useDashboard();
  useSignal(dashboard.tape.changed);
  useSignal(dashboard.tapeChanged);
  useEffect(() => {
    dashboard.setTapeActive(true);
    return () => dashboard.setTapeActive(false);
  }, [dashboard]);
  const ticks = dashboard.tape.ticks();
  const mode = dashboard.tapeMode;
  return (
    <section className="panel tape-panel">
      <div className="panel-head">
        <h2>Tape</h2>
        <span className={`dot ${dashboard.tapeState}`} title={`tape stream ${dashboard.tapeState}`} />
        <div className="buttons">
          <button type="button" className={mode === "selected" ? "active" : ""} aria-pressed={mode === "selected"} onClick={() => dashboard.setTapeMode("selected")}>
            selected
          </button>
          <button type="button" className={mode === "all" ? "active" : ""} aria-pressed={mode === "all"} onClick={() => dashboard.setTapeMode("all")}>
            all
          </button>
        </div>
      </div>
      <ScrollRegion label="Tape">
        <table className="grid tape" data-testid="tape" data-count={ticks.length}>
          <thead>
            <tr>
              <th>Time</th>
              <th>Symbol</th>
              <th className="num">Price</th>
              <th className="num">Volume</th>
              <th className="num" title="ticks merged into the row">Ticks</th>
            </tr>
          </thead>
          <tbody>
            {ticks.map((t) => (
              <tr key={t.event_id}>
                <td>{fmtTime(t.ts)}</td>
                <td>{t.symbol}</td>
                <td className="num">{fmtPrice(t.price, dashboard.market.tickSize(t.symbol))}</td>
                <td className="num">{fmtVolume(t.volume)}</td>
                <td className="num">{t.count ?? 1}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {ticks.length === 0 && <p className="muted pad">no ticks yet</p>}
      </ScrollRegion>
    </section>
  );
}
