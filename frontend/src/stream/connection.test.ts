import { beforeEach, describe, expect, it, vi } from "vitest";
import { makeTick } from "../test/factories";
import { FakeEventSource, ManualTimers, envelope } from "../test/fakes";
import { backoffDelay, type BackoffOptions } from "./backoff";
import { StreamConnection, type ConnectionState, type StreamOptions } from "./connection";
import type { Envelope } from "./envelope";

const NO_JITTER: BackoffOptions = { initialMs: 500, maxMs: 8_000, factor: 2, jitter: 0 };
const URL_ = "http://127.0.0.1:8001/stream";

function connect(over: Partial<StreamOptions> = {}) {
  const timers = new ManualTimers();
  const received: Envelope[] = [];
  const states: ConnectionState[] = [];
  const onReset = vi.fn();
  const conn = new StreamConnection({
    url: URL_,
    EventSource: FakeEventSource,
    onEnvelope: (env) => received.push(env),
    onReset,
    onState: (s) => states.push(s),
    backoff: NO_JITTER,
    timers,
    ...over,
  });
  conn.start();
  return { conn, timers, received, states, onReset };
}

beforeEach(() => FakeEventSource.reset());

describe("backoffDelay", () => {
  it("defaults to 0.5 s doubling up to 10 s", () => {
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, undefined, () => 0.5))).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
  });

  it("doubles from the initial delay up to the cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, NO_JITTER))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it("spreads by the jitter fraction", () => {
    const opts = { ...NO_JITTER, jitter: 0.2 };
    expect(backoffDelay(1, opts, () => 0)).toBe(800);
    expect(backoffDelay(1, opts, () => 1)).toBe(1200);
    expect(backoffDelay(1, opts, () => 0.5)).toBe(1000);
  });
});

describe("StreamConnection", () => {
  it("connects with the type and symbol filters and no resume id", () => {
    connect({ types: ["symbol.updated", "rttm.metrics"], symbols: ["BTCUSDT", "ETHUSDT"] });
    const es = FakeEventSource.last();
    expect(es.params.get("types")).toBe("symbol.updated,rttm.metrics");
    expect(es.params.get("symbols")).toBe("BTCUSDT,ETHUSDT");
    expect(es.params.has("last_event_id")).toBe(false);
  });

  it("is reconnecting until open, then live", () => {
    const { conn, states } = connect();
    expect(conn.state).toBe("reconnecting");
    FakeEventSource.last().open();
    expect(conn.state).toBe("live");
    expect(states).toEqual(["reconnecting", "live"]);
  });

  it("delivers parsed envelopes and remembers the last event id", () => {
    const { conn, received } = connect();
    const es = FakeEventSource.last();
    es.open();
    es.emit("tick.received", envelope("tick.received", "100-0", makeTick()), "100-0");
    es.emit("tick.received", "{broken", "101-0");
    es.emit("tick.received", envelope("tick.received", "102-0", makeTick({ event_id: "e-2" })), "102-0");
    expect(received.map((e) => e.id)).toEqual(["100-0", "102-0"]);
    expect(conn.lastEventId).toBe("102-0");
  });

  it("advances the resume id past events it cannot parse", () => {
    const { conn } = connect();
    FakeEventSource.last().emit("tick.received", "{broken", "103-0");
    expect(conn.lastEventId).toBe("103-0");
  });

  it("reconnects after an error on the backoff schedule, resuming from the last id", () => {
    const { timers, conn } = connect({ offlineAfter: 10 });
    let es = FakeEventSource.last();
    es.open();
    es.emit("symbol.updated", "{}", "200-5");
    es.fail();
    expect(es.closed).toBe(true);
    expect(conn.state).toBe("reconnecting");
    for (let i = 0; i < 5; i += 1) {
      timers.runAll();
      es = FakeEventSource.last();
      expect(es.params.get("last_event_id")).toBe("200-5");
      es.fail();
    }
    expect(timers.delays).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
    expect(FakeEventSource.instances).toHaveLength(6);
  });

  it("resets the backoff once a connection opens", () => {
    const { timers } = connect();
    FakeEventSource.last().fail();
    timers.runAll();
    FakeEventSource.last().fail();
    timers.runAll();
    FakeEventSource.last().open();
    FakeEventSource.last().fail();
    expect(timers.delays).toEqual([500, 1000, 500]);
  });

  it("reads offline after repeated failures and live again when it reconnects", () => {
    const { timers, conn } = connect({ offlineAfter: 3 });
    FakeEventSource.last().fail();
    timers.runAll();
    FakeEventSource.last().fail();
    timers.runAll();
    expect(conn.state).toBe("reconnecting");
    FakeEventSource.last().fail();
    expect(conn.state).toBe("offline");
    timers.runAll();
    expect(conn.state).toBe("offline"); // still trying, still offline
    FakeEventSource.last().open();
    expect(conn.state).toBe("live");
  });

  it("by default stays reconnecting through four failures and reads offline at the fifth", () => {
    const { timers, conn } = connect();
    const states: ConnectionState[] = [];
    for (let i = 0; i < 5; i += 1) {
      FakeEventSource.last().fail();
      states.push(conn.state);
      timers.runAll();
    }
    expect(states).toEqual(["reconnecting", "reconnecting", "reconnecting", "reconnecting", "offline"]);
  });

  it("on overflow closes and reconnects at once with the resume id", () => {
    const { timers, conn } = connect();
    const first = FakeEventSource.last();
    first.open();
    first.emit("rttm.metrics", "{}", "300-0");
    first.emit("overflow", JSON.stringify({ reason: "slow_client", last_event_id: "300-0" }));
    expect(first.closed).toBe(true);
    expect(conn.state).toBe("reconnecting");
    expect(timers.delays).toEqual([0]);
    timers.runAll();
    const second = FakeEventSource.last();
    expect(second).not.toBe(first);
    expect(second.params.get("last_event_id")).toBe("300-0");
  });

  it("backs off when overflows repeat, and starts again from at once after a quiet spell", () => {
    let now = 1_000_000;
    const { timers } = connect({ now: () => now });
    const overflow = () => {
      FakeEventSource.last().open();
      FakeEventSource.last().emit("overflow", JSON.stringify({ reason: "slow_client", last_event_id: "300-0" }));
      timers.runAll();
    };
    for (let i = 0; i < 4; i += 1) {
      overflow();
      now += 1_000;
    }
    now += 31_000; // quiet for longer than OVERFLOW_QUIET_MS
    overflow();
    expect(timers.delays).toEqual([0, 500, 1000, 2000, 0]);
  });

  it("asks the gateway to conflate when told to", () => {
    connect({ conflate: "250ms" });
    expect(FakeEventSource.last().params.get("conflate")).toBe("250ms");
  });

  it("on reset calls back to refetch and stays connected", () => {
    const { onReset, conn } = connect();
    const es = FakeEventSource.last();
    es.open();
    es.emit("reset", JSON.stringify({ reason: "history_trimmed", last_event_id: "1-0", oldest_event_id: "50-0" }));
    expect(onReset).toHaveBeenCalledTimes(1);
    expect(onReset.mock.calls[0]?.[0]).toMatchObject({ type: "reset", reason: "history_trimmed" });
    expect(es.closed).toBe(false);
    expect(conn.state).toBe("live");
  });

  it("does not pass a resume id when resume is off", () => {
    const { timers } = connect({ resume: false });
    const es = FakeEventSource.last();
    es.emit("tick.received", envelope("tick.received", "5-0", makeTick()), "5-0");
    es.fail();
    timers.runAll();
    expect(FakeEventSource.last().params.has("last_event_id")).toBe(false);
  });

  it("ignores events from a source it has replaced", () => {
    const { timers, received } = connect();
    const old = FakeEventSource.last();
    old.fail();
    timers.runAll();
    old.emit("tick.received", envelope("tick.received", "9-0", makeTick()), "9-0");
    expect(received).toHaveLength(0);
  });

  it("stop closes the source, cancels the retry and reads offline", () => {
    const { conn, timers } = connect();
    FakeEventSource.last().fail();
    conn.stop();
    expect(timers.pending.size).toBe(0);
    expect(conn.state).toBe("offline");
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it("survives a handler that throws", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    const { conn } = connect({
      onEnvelope: () => {
        throw new Error("boom");
      },
    });
    FakeEventSource.last().emit("tick.received", envelope("tick.received", "1-0", makeTick()), "1-0");
    expect(conn.lastEventId).toBe("1-0");
    expect(spy).toHaveBeenCalled();
    spy.mockRestore();
  });
});
