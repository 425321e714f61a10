// Run-time configuration: `./config.json` beside the page, never baked into the build.
// It holds no secret: the gateway proxies the API same-origin (`/api`) and adds the read key itself.

export interface DashboardConfig {
  apiBaseUrl: string;
  streamUrl: string;
  /** Reads are open to anyone on purpose (the public demo): the page says so. */
  public: boolean;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Check a parsed config.json and resolve its URLs against the page (the gateway sends `/api` and `/stream`). */
export function parseConfig(raw: unknown, pageUrl: string): DashboardConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json is not a JSON object");
  const fields = raw as Record<string, unknown>;
  const { apiBaseUrl, streamUrl } = fields;
  if (typeof apiBaseUrl !== "string" || !apiBaseUrl) throw new ConfigError("config.json: apiBaseUrl must be a URL");
  if (typeof streamUrl !== "string" || !streamUrl) throw new ConfigError("config.json: streamUrl must be a URL");
  if (fields.public !== undefined && typeof fields.public !== "boolean") {
    throw new ConfigError("config.json: public must be true or false");
  }
  // A key here is readable by anyone who can load the page: refuse it rather than use it.
  if ("apiKey" in fields && fields.apiKey) {
    throw new ConfigError("config.json carries an apiKey: a read key must never reach a browser (the gateway proxies /api)");
  }
  return {
    apiBaseUrl: resolve(apiBaseUrl, pageUrl).replace(/\/+$/, ""),
    streamUrl: resolve(streamUrl, pageUrl),
    public: fields.public === true,
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
