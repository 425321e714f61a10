import { describe, expect, it } from "vitest";
import { ApiClient, ApiError } from "./client";

interface Call {
  url: string;
  headers: Record<string, string>;
}

function recorder(status = 200, body: unknown = {}) {
  const calls: Call[] = [];
  const fetchFn = async (url: string, init?: RequestInit) => {
    calls.push({ url, headers: (init?.headers ?? {}) as Record<string, string> });
    return new Response(JSON.stringify(body), { status });
  };
  return { calls, fetchFn };
}

describe("ApiClient", () => {
  it("reads under the base URL and never sends a key (the gateway's proxy adds it)", async () => {
    const { calls, fetchFn } = recorder(200, { symbols: [] });
    const api = new ApiClient("http://gw:8001/api/", fetchFn);
    await api.views();
    await api.system().catch(() => {});
    expect(calls.map((c) => c.url)).toEqual(["http://gw:8001/api/symbols/views", "http://gw:8001/api/system"]);
    expect(calls.map((c) => c.headers)).toEqual([{ accept: "application/json" }, { accept: "application/json" }]);
  });

  it("builds the read paths with encoded ids", async () => {
    const { calls, fetchFn } = recorder(200, {});
    const api = new ApiClient("http://api", fetchFn);
    await api.candles("BTC/USD", "5m", 500);
    await api.history("ETHUSDT", 100);
    await api.trade("t 1");
    expect(calls.map((c) => c.url)).toEqual([
      "http://api/symbols/BTC%2FUSD/candles?interval=5m&limit=500",
      "http://api/symbols/ETHUSDT/history?limit=100",
      "http://api/rttm/trades/t%201",
    ]);
  });

  it("answers null for an unknown trade and a snapshot not computed yet", async () => {
    expect(await new ApiClient("http://api", recorder(404).fetchFn).trade("x")).toBeNull();
    expect(await new ApiClient("http://api", recorder(503).fetchFn).rttmMetrics()).toBeNull();
  });

  it("raises ApiError with the API's detail", async () => {
    const api = new ApiClient("http://api", recorder(401, { error: "unauthorized", detail: "bad key" }).fetchFn);
    await expect(api.views()).rejects.toThrow(/401 .*bad key/);
  });

  it("marks an unreachable API with status 0", async () => {
    const api = new ApiClient("http://api", async () => {
      throw new TypeError("Failed to fetch");
    });
    const err = await api.views().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).unreachable).toBe(true);
  });
});
