import type { RttmSnapshot } from "../api/types";
import { fmtNum } from "../util/format";
import { Sparkline } from "./Sparkline";

export function TpsPanel({ snapshot }: { snapshot: RttmSnapshot | null }) {
  const tps = snapshot?.tps;
  const trades = snapshot?.trades;
  const byService = Object.entries(tps?.by_service ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <section className="panel tps-panel">
      <div className="panel-head">
        <h2>Throughput</h2>
        <span className="muted">trade events/s, last 120 s</span>
      </div>
      <div className="big-figure">
        <span data-testid="pipeline-tps">{fmtNum(tps?.current, 1)}</span>
        <span className="unit">TPS</span>
      </div>
      <Sparkline points={tps?.series ?? []} label="TPS over the last 120 seconds" />
      <div className="chips">
        <span>completed {fmtNum(trades?.completed)}</span>
        <span>failed {fmtNum(trades?.failed)}</span>
        <span>active {fmtNum(trades?.active)}</span>
        <span>late events {fmtNum(trades?.late_events)}</span>
      </div>
      {byService.length > 0 && (
        <table className="grid compact">
          <tbody>
            {byService.map(([service, rate]) => (
              <tr key={service}>
                <td>{service}</td>
                <td className="num">{fmtNum(rate, 1)}/s</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
