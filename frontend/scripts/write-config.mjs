// Writes dist/config.json for a static host from the environment:
//   MDSTACK_API_URL (default http://127.0.0.1:8000)
//   MDSTACK_STREAM_URL (default http://127.0.0.1:8001/stream)
// A static host is public-only: the page reads the API and the stream directly, so they must be open
// (PUBLIC_READS=true, CORS_ORIGINS naming this host) and the page shows the public-demo banner. No read key
// goes into the file, ever: a private deployment serves the dashboard from the gateway (login + /api proxy).
// Usage: npm run build && MDSTACK_API_URL=https://api.example npm run config
import { mkdirSync, writeFileSync } from "node:fs";

const config = {
  apiBaseUrl: (process.env.MDSTACK_API_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, ""),
  streamUrl: process.env.MDSTACK_STREAM_URL ?? "http://127.0.0.1:8001/stream",
  public: true,
};
const outDir = process.argv[2] ?? "dist";
mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/config.json`, JSON.stringify(config, null, 2) + "\n");
console.log(`wrote ${outDir}/config.json: api ${config.apiBaseUrl}, stream ${config.streamUrl} (public)`);
