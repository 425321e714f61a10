import { useQuery } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import type { TradeTrace } from "../api/types";
import { useDashboard } from "../app/context";
import { fmtDateTime, fmtMs } from "../util/format";

type Result =
  | { kind: "idle" }
  | { kind: "loading"; tradeId: string }
  | { kind: "notFound"; tradeId: string }
  | { kind: "error"; tradeId: string; message: string }
  | { kind: "found"; trace: TradeTrace };

/** Input a trade id, see its lifecycle. `requested` (from a click elsewhere) fills and runs it. Each id is
 * its own query: a late answer for an id asked before can never replace the one now shown. */
export function TradeLookup({ requested }: { requested: { tradeId: string; seq: number } | null }) {
  const dashboard = useDashboard();
  const [input, setInput] = useState("");
  const [tradeId, setTradeId] = useState<string | null>(null);
  const query = useQuery({ ...dashboard.queries.trade(tradeId ?? ""), enabled: tradeId !== null });

  useEffect(() => {
    if (!requested) return;
    setInput(requested.tradeId);
    setTradeId(requested.tradeId.trim() || null);
  }, [requested]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const id = input.trim();
    if (!id) return;
    if (id === tradeId) void query.refetch();
    setTradeId(id);
  };

  const result: Result =
    tradeId === null
      ? { kind: "idle" }
      : query.isPending
        ? { kind: "loading", tradeId }
        : query.isError
          ? { kind: "error", tradeId, message: query.error.message }
          : query.data
            ? { kind: "found", trace: query.data }
            : { kind: "notFound", tradeId };

  return (
    <section className="panel lookup-panel">
      <div className="panel-head">
        <h2>Trade lookup</h2>
      </div>
      <form onSubmit={submit} className="lookup-form">
        <input
          data-testid="trade-lookup-input"
          aria-label="Trade id"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          placeholder="trade id"
          spellCheck={false}
        />
        <button type="submit">Trace</button>
      </form>
      <div data-testid="trade-lookup-result" data-state={result.kind} className="lookup-result">
        <ResultView result={result} />
      </div>
    </section>
  );
}

function ResultView({ result }: { result: Result }) {
  switch (result.kind) {
    case "idle":
      return <p className="muted">Enter a trade id, or click one in the DLQ or stuck lists.</p>;
    case "loading":
      return <p className="muted">looking up {result.tradeId}…</p>;
    case "notFound":
      return <p className="error-text">unknown trade {result.tradeId}</p>;
    case "error":
      return <p className="error-text">{result.message}</p>;
    case "found":
      return <TraceView trace={result.trace} />;
  }
}

function TraceView({ trace }: { trace: TradeTrace }) {
  return (
    <div>
      <p>
        <strong className="mono">{trace.trade_id}</strong>{" "}
        <span className={`status ${trace.status}`} data-testid="trade-status">
          {trace.status}
        </span>{" "}
        <span className="muted">end-to-end {fmtMs(trace.end_to_end_ms)}</span>
      </p>
      <table className="grid compact">
        <thead>
          <tr>
            <th>#</th>
            <th>Time</th>
            <th>Service</th>
            <th>Event</th>
            <th>Status</th>
            <th className="num">Stage</th>
          </tr>
        </thead>
        <tbody>
          {trace.events.map((e, i) => (
            <tr key={e.event_key} className={/FAIL|REJECT/.test(e.event_status) ? "down" : undefined}>
              <td>{i + 1}</td>
              <td>{fmtDateTime(e.event_time, true)}</td>
              <td>{e.service_name}</td>
              <td>{e.event_type}</td>
              <td>{e.event_status}</td>
              <td className="num">{fmtMs(e.stage_latency_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {trace.dlq.length > 0 && <Records title="Dead letters" records={trace.dlq} />}
      {trace.errors.length > 0 && <Records title="Errors" records={trace.errors} />}
    </div>
  );
}

function Records({ title, records }: { title: string; records: ReadonlyArray<Record<string, unknown>> }) {
  return (
    <div className="records">
      <h3>{title}</h3>
      <ul>
        {records.map((r, i) => (
          <li key={i} className="mono small">
            {Object.entries(r)
              .filter(([k]) => !["trade_id", "event_key", "received_at"].includes(k))
              .map(([k, v]) => `${k}=${k.endsWith("_time") && typeof v === "number" ? fmtDateTime(v) : String(v)}`)
              .join("  ")}
          </li>
        ))}
      </ul>
    </div>
  );
}
