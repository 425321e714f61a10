import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "./loadConfig";

const PAGE = "http://127.0.0.1:8001/";

function respond(body: unknown, status = 200): typeof fetch {
  return (async () => new Response(typeof body === "string" ? body : JSON.stringify(body), { status })) as typeof fetch;
}

describe("parseConfig", () => {
  it("keeps absolute URLs and the public flag (a static host)", () => {
    const config = parseConfig(
      { apiBaseUrl: "http://127.0.0.1:8000/", streamUrl: "http://127.0.0.1:8001/stream", public: true },
      PAGE,
    );
    expect(config).toEqual({ apiBaseUrl: "http://127.0.0.1:8000", streamUrl: "http://127.0.0.1:8001/stream", public: true });
  });

  it("resolves relative URLs against the page (the gateway sends /api and /stream)", () => {
    const config = parseConfig({ apiBaseUrl: "/api", streamUrl: "/stream", public: false }, "https://host/dash/config.json");
    expect(config).toEqual({ apiBaseUrl: "https://host/api", streamUrl: "https://host/stream", public: false });
  });

  it("reads a config without the flag as not public", () => {
    expect(parseConfig({ apiBaseUrl: "/api", streamUrl: "/stream" }, PAGE).public).toBe(false);
  });

  it("refuses a config that carries a read key", () => {
    expect(() => parseConfig({ apiBaseUrl: "/api", streamUrl: "/stream", apiKey: "k" }, PAGE)).toThrow(
      /apiKey: a read key must never reach a browser/,
    );
    expect(parseConfig({ apiBaseUrl: "/api", streamUrl: "/stream", apiKey: null }, PAGE)).not.toHaveProperty("apiKey");
  });

  it("rejects a config without URLs or with a bad flag", () => {
    expect(() => parseConfig({ streamUrl: "/stream" }, PAGE)).toThrow(ConfigError);
    expect(() => parseConfig(null, PAGE)).toThrow(ConfigError);
    expect(() => parseConfig({ apiBaseUrl: "x", streamUrl: "/s", public: "yes" }, PAGE)).toThrow(/public must be/);
  });
});

describe("loadConfig", () => {
  it("fetches config.json beside the page", async () => {
    let asked = "";
    const fetchFn = (async (url: string) => {
      asked = url;
      return new Response(JSON.stringify({ apiBaseUrl: "/api", streamUrl: "/stream", public: false }));
    }) as unknown as typeof fetch;
    const config = await loadConfig("http://h:8001/app/index.html?x=1", fetchFn);
    expect(asked).toBe("http://h:8001/app/config.json");
    expect(config.streamUrl).toBe("http://h:8001/stream");
    expect(config.apiBaseUrl).toBe("http://h:8001/api");
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
