import type { RttmSnapshot } from "../api/types";
import { fmtNum } from "../util/format";
import { Sparkline } from "./Sparkline";
import { ScrollRegion } from "../app/ScrollRegion";

export function DepthPanel({ snapshot }: { snapshot: RttmSnapshot | null }) {
  const pipeline = snapshot?.pipeline;
  const partitions = [...(pipeline?.partitions ?? [])].sort(
    (a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.service.localeCompare(b.service),
  );
  const maxLag = Math.max(1, pipeline?.max_lag ?? 0, ...partitions.map((p) => p.lag));
  const byTopic = Object.entries(pipeline?.by_topic ?? {});
  return (
    <section className="panel depth-panel">
      <div className="panel-head">
        <h2>Pipeline depth</h2>
        <span className="muted">
          total lag {fmtNum(pipeline?.total_lag)} · max {fmtNum(pipeline?.max_lag)}
        </span>
      </div>
      <Sparkline points={pipeline?.trend ?? []} height={50} label="Total lag trend" className="lag" />
      <ScrollRegion label="Pipeline depth by partition">
        <table className="grid" data-testid="depth-table">
          <thead>
            <tr>
              <th>Topic</th>
              <th className="num">Part.</th>
              <th>Service</th>
              <th className="num">Lag</th>
              <th className="bar-col" />
            </tr>
          </thead>
          <tbody>
            {partitions.map((p) => (
              <tr key={`${p.service}/${p.topic}/${p.partition}`}>
                <td>{p.topic}</td>
                <td className="num">{p.partition}</td>
                <td>{p.service}</td>
                <td className="num">{fmtNum(p.lag)}</td>
                <td className="bar-col">
                  <div className="lag-bar" style={{ width: `${Math.min(100, (p.lag / maxLag) * 100)}%` }} />
                </td>
              </tr>
            ))}
            {partitions.length === 0 && (
              <tr>
                <td colSpan={5} className="muted">
                  no queue metrics yet
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </ScrollRegion>
      {byTopic.length > 0 && (
        <div className="chips">
          {byTopic.map(([topic, lag]) => (
            <span key={topic}>
              {topic}: {fmtNum(lag)}
            </span>
          ))}
        </div>
      )}
    </section>
  );
}
