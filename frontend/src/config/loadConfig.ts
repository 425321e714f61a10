// Run-time configuration: `./config.json` beside the page, never baked into the build.

export interface DashboardConfig {
  apiBaseUrl: string;
  streamUrl: string;
  apiKey: string | null;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Check a parsed config.json and resolve its URLs against the page (the gateway sends `/stream`). */
export function parseConfig(raw: unknown, pageUrl: string): DashboardConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json is not a JSON object");
  const { apiBaseUrl, streamUrl, apiKey } = raw as Record<string, unknown>;
  if (typeof apiBaseUrl !== "string" || !apiBaseUrl) throw new ConfigError("config.json: apiBaseUrl must be a URL");
  if (typeof streamUrl !== "string" || !streamUrl) throw new ConfigError("config.json: streamUrl must be a URL");
  if (apiKey !== null && apiKey !== undefined && typeof apiKey !== "string") {
    throw new ConfigError("config.json: apiKey must be a string or null");
  }
  return {
    apiBaseUrl: resolve(apiBaseUrl, pageUrl).replace(/\/+$/, ""),
    streamUrl: resolve(streamUrl, pageUrl),
    apiKey: apiKey ? apiKey : null,
  };
}

function resolve(url: string, pageUrl: string): string {
  try {
    return new URL(url, pageUrl).toString();
  } catch {
    throw new ConfigError(`config.json: ${JSON.stringify(url)} is not a URL`);
  }
}

export async function loadConfig(pageUrl: string, fetchFn: typeof fetch = fetch): Promise<DashboardConfig> {
  const url = new URL("config.json", pageUrl).toString();
  let response: Response;
  try {
    response = await fetchFn(url, { cache: "no-store" });
  } catch (err) {
    throw new ConfigError(`could not fetch ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!response.ok) throw new ConfigError(`${url} answered ${response.status}`);
  let raw: unknown;
  try {
    raw = await response.json();
  } catch {
    throw new ConfigError(`${url} is not valid JSON`);
  }
  return parseConfig(raw, url);
}
