import type { Percentiles, RttmSnapshot } from "../api/types";
import { fmtMs, fmtNum } from "../util/format";

export function LatencyTable({ snapshot }: { snapshot: RttmSnapshot | null }) {
  const stages = Object.entries(snapshot?.latency_ms?.stages ?? {});
  const e2e = snapshot?.latency_ms?.end_to_end;
  return (
    <section className="panel latency-panel">
      <div className="panel-head">
        <h2>Stage latency</h2>
        <span className="muted">over {snapshot?.window_s ?? "—"} s</span>
      </div>
      <table className="grid" data-testid="latency-table">
        <thead>
          <tr>
            <th>Stage</th>
            <th className="num">p50</th>
            <th className="num">p95</th>
            <th className="num">p99</th>
            <th className="num">n</th>
          </tr>
        </thead>
        <tbody>
          {stages.map(([stage, p]) => (
            <Row key={stage} name={stage} p={p} />
          ))}
          {e2e && <Row name="end-to-end" p={e2e} total />}
          {!snapshot && (
            <tr>
              <td colSpan={5} className="muted">
                waiting for the first snapshot…
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

function Row({ name, p, total = false }: { name: string; p: Percentiles; total?: boolean }) {
  return (
    <tr className={total ? "total" : undefined} data-stage={name}>
      <td>{name}</td>
      <td className="num">{fmtMs(p.p50)}</td>
      <td className="num">{fmtMs(p.p95)}</td>
      <td className="num">{fmtMs(p.p99)}</td>
      <td className="num">{fmtNum(p.count)}</td>
    </tr>
  );
}
