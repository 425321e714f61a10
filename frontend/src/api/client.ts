// The read API over fetch: a timeout, and failures turned into ApiError (status 0 = the API could not be
// reached). No key here: served by the gateway, the base is its read proxy `/api`, which adds the key
// server side; the browser's own login (HTTP Basic) goes along with every same-origin request by itself.
import type {
  AlertsResponse,
  CandlesResponse,
  DlqResponse,
  HistoryResponse,
  Interval,
  RttmSnapshot,
  Snapshot,
  StuckResponse,
  SystemStatus,
  TradeTrace,
} from "./types";

export const REQUEST_TIMEOUT_MS = 10_000; // a read that takes longer is treated as the API being unreachable

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get unreachable(): boolean {
    return this.status === 0;
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class ApiClient {
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly fetchFn: FetchLike = (input, init) => fetch(input, init),
  ) {
    this.base = baseUrl.replace(/\/+$/, "");
  }

  /** GET a JSON document; `allow` lists statuses answered with null instead of an error. */
  async get<T>(path: string, allow: readonly number[] = []): Promise<T | null> {
    const url = this.base + path;
    const headers: Record<string, string> = { accept: "application/json" };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let response: Response;
    try {
      response = await this.fetchFn(url, { headers, signal: abort.signal });
    } catch (err) {
      throw new ApiError(0, url, `API unreachable (${url}): ${describe(err)}`);
    } finally {
      clearTimeout(timer);
    }
    if (allow.includes(response.status)) return null;
    if (!response.ok) {
      throw new ApiError(response.status, url, `${response.status} from ${url}: ${await errorDetail(response)}`);
    }
    try {
      return (await response.json()) as T;
    } catch (err) {
      throw new ApiError(response.status, url, `bad JSON from ${url}: ${describe(err)}`);
    }
  }

  private async must<T>(path: string): Promise<T> {
    return (await this.get<T>(path)) as T;
  }

  /** Every symbol's view and session in one answer (the start, and every reload after a `reset`). */
  views(): Promise<Snapshot> {
    return this.must("/symbols/views");
  }

  candles(symbol: string, interval: Interval, limit = 500): Promise<CandlesResponse> {
    return this.must(`/symbols/${enc(symbol)}/candles?interval=${interval}&limit=${limit}`);
  }

  history(symbol: string, limit = 100): Promise<HistoryResponse> {
    return this.must(`/symbols/${enc(symbol)}/history?limit=${limit}`);
  }

  /** The latest RTTM snapshot, or null while none has been computed (503). */
  rttmMetrics(): Promise<RttmSnapshot | null> {
    return this.get("/rttm/metrics", [503]);
  }

  dlq(limit = 20): Promise<DlqResponse> {
    return this.must(`/rttm/dlq?limit=${limit}`);
  }

  stuck(limit = 20): Promise<StuckResponse> {
    return this.must(`/rttm/stuck?limit=${limit}`);
  }

  alerts(): Promise<AlertsResponse> {
    return this.must("/rttm/alerts");
  }

  /** A trade's lifecycle trace, or null when the trade is unknown (404). */
  trade(tradeId: string): Promise<TradeTrace | null> {
    return this.get(`/rttm/trades/${enc(tradeId)}`, [404]);
  }

  system(): Promise<SystemStatus> {
    return this.must("/system");
  }
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.name === "AbortError" ? `no answer in ${REQUEST_TIMEOUT_MS} ms` : err.message;
  return String(err);
}

async function errorDetail(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { error?: unknown; detail?: unknown };
    const detail = body.detail ?? body.error;
    return typeof detail === "string" ? detail : JSON.stringify(detail ?? body);
  } catch {
    return response.statusText || "error";
  }
}
