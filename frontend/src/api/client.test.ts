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
  it("sends x-api-key on every request when configured", async () => {
    const { calls, fetchFn } = recorder(200, { symbols: [] });
    const api = new ApiClient("http://api:8000/", "secret", fetchFn);
    await api.symbols();
    await api.system().catch(() => {});
    expect(calls.map((c) => c.url)).toEqual(["http://api:8000/symbols", "http://api:8000/system"]);
    expect(calls.every((c) => c.headers["x-api-key"] === "secret")).toBe(true);
  });

  it("sends no key when none is configured", async () => {
    const { calls, fetchFn } = recorder(200, { symbols: [] });
    await new ApiClient("http://api:8000", null, fetchFn).symbols();
    expect(calls[0]?.headers).not.toHaveProperty("x-api-key");
  });

  it("builds the read paths with encoded ids", async () => {
    const { calls, fetchFn } = recorder(200, {});
    const api = new ApiClient("http://api", null, fetchFn);
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
    expect(await new ApiClient("http://api", null, recorder(404).fetchFn).trade("x")).toBeNull();
    expect(await new ApiClient("http://api", null, recorder(503).fetchFn).rttmMetrics()).toBeNull();
  });

  it("raises ApiError with the API's detail", async () => {
    const api = new ApiClient("http://api", null, recorder(401, { error: "unauthorized", detail: "bad key" }).fetchFn);
    await expect(api.symbols()).rejects.toThrow(/401 .*bad key/);
  });

  it("marks an unreachable API with status 0", async () => {
    const api = new ApiClient("http://api", null, async () => {
      throw new TypeError("Failed to fetch");
    });
    const err = await api.symbols().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).unreachable).toBe(true);
  });
});
