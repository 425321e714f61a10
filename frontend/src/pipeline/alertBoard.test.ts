import { describe, expect, it } from "vitest";
import { makeAlert } from "../test/factories";
import { AlertBoard, SYNC_GRACE_MS } from "./alertBoard";

describe("AlertBoard", () => {
  it("shows a fired alert and logs the transition", () => {
    const board = new AlertBoard();
    board.fired(makeAlert({ rule: "dlq_per_min", alert_id: "a1", fired_at: 100 }), 1000);
    expect(board.list().map((a) => [a.alert.rule, a.phase])).toEqual([["dlq_per_min", "firing"]]);
    expect(board.recent().map((t) => [t.kind, t.rule, t.at])).toEqual([["fired", "dlq_per_min", 100]]);
  });

  it("does not log the same firing alert twice", () => {
    const board = new AlertBoard();
    const alert = makeAlert({ alert_id: "a1" });
    board.fired(alert, 0);
    board.fired({ ...alert, value: 2000 }, 10);
    expect(board.recent()).toHaveLength(1);
    expect(board.list()[0]?.alert.value).toBe(2000);
  });

  it("keeps a resolved alert for the linger time, then drops it", () => {
    const board = new AlertBoard(30, 5000);
    board.fired(makeAlert({ alert_id: "a1" }), 0);
    board.resolved(makeAlert({ alert_id: "a1", resolved_at: 900 }), 1000);
    expect(board.list()[0]?.phase).toBe("resolved");
    expect(board.firingCount()).toBe(0);
    expect(board.prune(5999)).toBe(false);
    expect(board.prune(6000)).toBe(true);
    expect(board.list()).toHaveLength(0);
    expect(board.recent().map((t) => t.kind)).toEqual(["resolved", "fired"]);
  });

  it("a new fire of the same rule replaces a lingering resolved one with a new sequence", () => {
    const board = new AlertBoard();
    board.fired(makeAlert({ alert_id: "a1" }), 0);
    const firstSeq = board.list()[0]?.seq;
    board.resolved(makeAlert({ alert_id: "a1" }), 10);
    board.fired(makeAlert({ alert_id: "a2", fired_at: 2_000_000 }), 20);
    const [only] = board.list();
    expect(board.list()).toHaveLength(1);
    expect(only?.phase).toBe("firing");
    expect(only?.seq).not.toBe(firstSeq);
  });

  it("ignores a resolve of an older alert of a rule that fired again", () => {
    const board = new AlertBoard();
    board.fired(makeAlert({ alert_id: "new", fired_at: 5000 }), 0);
    board.resolved(makeAlert({ alert_id: "old", fired_at: 1000 }), 10);
    expect(board.list()[0]?.phase).toBe("firing");
  });

  it("bounds the log", () => {
    const board = new AlertBoard(5);
    for (let i = 0; i < 40; i += 1) {
      board.fired(makeAlert({ alert_id: `a${i}`, fired_at: i }), i);
      board.resolved(makeAlert({ alert_id: `a${i}`, resolved_at: i }), i);
    }
    expect(board.recent()).toHaveLength(5);
  });

  it("sync adds missing firing alerts and resolves ones gone long enough", () => {
    const board = new AlertBoard();
    board.fired(makeAlert({ rule: "old", alert_id: "o", fired_at: 1000 }), 0);
    board.fired(makeAlert({ rule: "fresh", alert_id: "f", fired_at: 10_000 }), 0);
    board.sync([makeAlert({ rule: "stuck_trades", alert_id: "s", fired_at: 9000 })], 50, 10_000 + SYNC_GRACE_MS - 1);
    const phases = Object.fromEntries(board.list().map((a) => [a.alert.rule, a.phase]));
    expect(phases).toEqual({ old: "resolved", fresh: "firing", stuck_trades: "firing" });
  });

  it("seeds the log from history in time order", () => {
    const board = new AlertBoard();
    board.seedLog([
      makeAlert({ rule: "b", alert_id: "2", fired_at: 300 }),
      makeAlert({ rule: "a", alert_id: "1", fired_at: 100, resolved_at: 200 }),
    ]);
    expect(board.recent().map((t) => [t.rule, t.kind, t.at])).toEqual([
      ["b", "fired", 300],
      ["a", "resolved", 200],
      ["a", "fired", 100],
    ]);
  });
});
