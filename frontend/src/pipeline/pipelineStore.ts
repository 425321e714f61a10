// Trade-pipeline state: the latest RTTM snapshot, the alert board, and the
// lists polled from the API (DLQ entries, stuck trades).
import type { Alert, AlertsResponse, DlqEvent, RttmSnapshot, StuckResponse } from "../api/types";
import type { FrameCoalescer } from "../store/frameCoalescer";
import { Signal } from "../store/signal";
import { AlertBoard } from "./alertBoard";

export class PipelineStore {
  snapshot: RttmSnapshot | null = null;
  dlq: DlqEvent[] = [];
  stuck: StuckResponse | null = null;
  readonly board = new AlertBoard();
  /** What the page's live region says: the latest alert that fired or resolved on the stream (null: none yet). */
  announcement: string | null = null;

  readonly snapshotChanged: Signal;
  readonly alertsChanged: Signal;
  readonly listsChanged: Signal;

  constructor(
    coalescer: FrameCoalescer,
    private readonly now: () => number = Date.now,
  ) {
    this.snapshotChanged = new Signal(coalescer);
    this.alertsChanged = new Signal(coalescer);
    this.listsChanged = new Signal(coalescer);
  }

  /** A snapshot from the stream or the API; an older one than held is ignored. */
  applySnapshot(snapshot: RttmSnapshot): void {
    if (this.snapshot && snapshot.computed_at < this.snapshot.computed_at) return;
    this.snapshot = snapshot;
    this.snapshotChanged.markDirty();
    if (Array.isArray(snapshot.alerts)) {
      this.board.sync(snapshot.alerts, this.now(), snapshot.computed_at);
      this.alertsChanged.markDirty();
    }
  }

  alertFired(alert: Alert): void {
    this.board.fired(alert, this.now());
    this.announcement = `Alert fired: ${alert.message ?? alert.rule}`;
    this.alertsChanged.markDirty();
  }

  alertResolved(alert: Alert): void {
    this.board.resolved(alert, this.now());
    this.announcement = `Alert resolved: ${alert.rule}`;
    this.alertsChanged.markDirty();
  }

  applyAlerts(response: AlertsResponse): void {
    this.board.seedLog(response.history ?? []);
    this.board.sync(response.firing ?? [], this.now());
    this.alertsChanged.markDirty();
  }

  /** Called on a timer: drops resolved alerts whose linger is over. */
  pruneAlerts(): void {
    if (this.board.prune(this.now())) this.alertsChanged.markDirty();
  }

  setDlq(events: DlqEvent[]): void {
    this.dlq = events;
    this.listsChanged.markDirty();
  }

  setStuck(stuck: StuckResponse): void {
    this.stuck = stuck;
    this.listsChanged.markDirty();
  }
}
