import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "./loadConfig";

const PAGE = "http://127.0.0.1:8001/";

function respond(body: unknown, status = 200): typeof fetch {
  return (async () => new Response(typeof body === "string" ? body : JSON.stringify(body), { status })) as typeof fetch;
}

describe("parseConfig", () => {
  it("keeps absolute URLs and the key", () => {
    const config = parseConfig(
      { apiBaseUrl: "http://127.0.0.1:8000/", streamUrl: "http://127.0.0.1:8001/stream", apiKey: "k" },
      PAGE,
    );
    expect(config).toEqual({ apiBaseUrl: "http://127.0.0.1:8000", streamUrl: "http://127.0.0.1:8001/stream", apiKey: "k" });
  });

  it("resolves relative URLs against the page (the gateway sends /stream)", () => {
    const config = parseConfig({ apiBaseUrl: "./api", streamUrl: "/stream", apiKey: null }, "https://host/dash/config.json");
    expect(config).toEqual({ apiBaseUrl: "https://host/dash/api", streamUrl: "https://host/stream", apiKey: null });
  });

  it("rejects a config without URLs", () => {
    expect(() => parseConfig({ streamUrl: "/stream" }, PAGE)).toThrow(ConfigError);
    expect(() => parseConfig(null, PAGE)).toThrow(ConfigError);
    expect(() => parseConfig({ apiBaseUrl: "x", streamUrl: "/s", apiKey: 5 }, PAGE)).toThrow(ConfigError);
  });
});

describe("loadConfig", () => {
  it("fetches config.json beside the page", async () => {
    let asked = "";
    const fetchFn = (async (url: string) => {
      asked = url;
      return new Response(JSON.stringify({ apiBaseUrl: "http://a:8000", streamUrl: "/stream", apiKey: null }));
    }) as unknown as typeof fetch;
    const config = await loadConfig("http://h:8001/app/index.html?x=1", fetchFn);
    expect(asked).toBe("http://h:8001/app/config.json");
    expect(config.streamUrl).toBe("http://h:8001/stream");
  });

  it("explains an unreachable, failing or broken config", async () => {
    const down = (async () => {
      throw new TypeError("Failed to fetch");
    }) as unknown as typeof fetch;
    await expect(loadConfig(PAGE, down)).rejects.toThrow(/could not fetch .*config.json/);
    await expect(loadConfig(PAGE, respond("nope", 404))).rejects.toThrow(/answered 404/);
    await expect(loadConfig(PAGE, respond("{bad"))).rejects.toThrow(/not valid JSON/);
  });
});
