// Active alerts and a short log of transitions. An alert that resolves stays
// on the board for `lingerMs` in its "resolved" phase (so the resolve is seen),
// then goes; the log keeps the latest `logSize` transitions.
import type { Alert } from "../api/types";
import { Ring } from "../util/ring";

export const ALERT_LOG_SIZE = 30; // transitions kept in the log
export const RESOLVED_LINGER_MS = 5_000; // how long a resolved alert stays on the board
export const SYNC_GRACE_MS = 3_000; // a firing alert missing from a snapshot this much newer is taken as resolved

export interface BoardAlert {
  alert: Alert;
  phase: "firing" | "resolved";
  since: number; // when this phase began (client clock), for the flash
  seq: number; // bumps per transition; React keys on it to replay the animation
}

export interface AlertTransition {
  kind: "fired" | "resolved";
  rule: string;
  alert_id: string;
  message: string | null; // null: a history record without its fired row
  value: number | null;
  threshold: number;
  at: number; // server time of the transition
  seq: number;
}

export class AlertBoard {
  private readonly active = new Map<string, BoardAlert>(); // by rule
  private readonly transitions: Ring<AlertTransition>;
  private seq = 0;

  constructor(
    logSize = ALERT_LOG_SIZE,
    private readonly lingerMs = RESOLVED_LINGER_MS,
  ) {
    this.transitions = new Ring(logSize);
  }

  fired(alert: Alert, now: number): void {
    const held = this.active.get(alert.rule);
    if (held?.phase === "firing" && held.alert.alert_id === alert.alert_id) {
      held.alert = alert; // the same alert again (snapshot refresh): no new transition
      return;
    }
    this.seq += 1;
    this.active.set(alert.rule, { alert, phase: "firing", since: now, seq: this.seq });
    this.log("fired", alert, alert.fired_at ?? now);
  }

  resolved(alert: Alert, now: number): void {
    const held = this.active.get(alert.rule);
    if (held && held.phase === "resolved") return;
    if (held && held.alert.alert_id !== alert.alert_id && alert.alert_id) {
      // A resolve for an older alert of the same rule than the one firing now.
      if ((alert.fired_at ?? 0) < (held.alert.fired_at ?? 0)) return;
    }
    this.seq += 1;
    this.active.set(alert.rule, { alert: { ...held?.alert, ...alert }, phase: "resolved", since: now, seq: this.seq });
    this.log("resolved", alert, alert.resolved_at ?? now);
  }

  /**
   * Align with the authoritative list of firing alerts (GET /rttm/alerts, or a
   * snapshot's `alerts` computed at `asOf`): missing ones are added, and ones no
   * longer firing are resolved, unless they fired after `asOf - SYNC_GRACE_MS`
   * (their fire event may be newer than the list).
   */
  sync(firing: readonly Alert[], now: number, asOf: number = now): void {
    const rules = new Set(firing.map((a) => a.rule));
    for (const alert of firing) this.fired(alert, now);
    for (const [rule, held] of this.active) {
      if (held.phase !== "firing" || rules.has(rule)) continue;
      if ((held.alert.fired_at ?? 0) > asOf - SYNC_GRACE_MS) continue;
      this.resolved({ ...held.alert, resolved_at: asOf }, now);
    }
  }

  /** Seed the log from GET /rttm/alerts history (newest first there). */
  seedLog(history: readonly Alert[]): void {
    if (this.transitions.size) return;
    const events: Array<[AlertTransition["kind"], Alert, number]> = [];
    for (const a of history) {
      if (a.fired_at !== null) events.push(["fired", a, a.fired_at]); // null: its fired row is gone
      if (a.resolved_at) events.push(["resolved", a, a.resolved_at]);
    }
    events.sort((x, y) => x[2] - y[2]);
    for (const [kind, alert, at] of events.slice(-this.transitions.capacity)) this.log(kind, alert, at);
  }

  /** Remove resolved alerts whose linger has passed; true if any went. */
  prune(now: number): boolean {
    let removed = false;
    for (const [rule, held] of this.active) {
      if (held.phase === "resolved" && now - held.since >= this.lingerMs) {
        this.active.delete(rule);
        removed = true;
      }
    }
    return removed;
  }

  /** Firing first, newest first; then the resolved ones still lingering. */
  list(): BoardAlert[] {
    return [...this.active.values()].sort((a, b) => {
      if (a.phase !== b.phase) return a.phase === "firing" ? -1 : 1;
      return (b.alert.fired_at ?? 0) - (a.alert.fired_at ?? 0);
    });
  }

  firingCount(): number {
    let n = 0;
    for (const held of this.active.values()) if (held.phase === "firing") n += 1;
    return n;
  }

  hasResolved(): boolean {
    for (const held of this.active.values()) if (held.phase === "resolved") return true;
    return false;
  }

  /** Recent transitions, newest first. */
  recent(): AlertTransition[] {
    return this.transitions.newestFirst();
  }

  private log(kind: AlertTransition["kind"], alert: Alert, at: number): void {
    this.seq += 1;
    this.transitions.push({
      kind,
      rule: alert.rule,
      alert_id: alert.alert_id,
      message: alert.message,
      value: alert.value,
      threshold: alert.threshold,
      at,
      seq: this.seq,
    });
  }
}
