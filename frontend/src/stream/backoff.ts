// Reconnect delays: exponential from `initialMs`, capped at `maxMs`, with +/- `jitter`
// (a fraction) so many dashboards do not reconnect in lockstep after a gateway restart.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 10_000, factor: 2, jitter: 0.2 }; // 0.5, 1, 2, 4, 8, 10, 10 ... s

/** Delay before retry number `attempt` (0 = the first retry after a failure). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(options.maxMs, options.initialMs * options.factor ** Math.max(0, attempt));
  const spread = base * options.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}
