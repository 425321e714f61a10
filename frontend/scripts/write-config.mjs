// Writes dist/config.json for a static host from the environment:
//   MDSTACK_API_URL (default http://127.0.0.1:8000)
//   MDSTACK_STREAM_URL (default http://127.0.0.1:8001/stream)
//   MDSTACK_API_KEY (default none)
// Usage: npm run build && MDSTACK_API_URL=https://api.example npm run config
import { mkdirSync, writeFileSync } from "node:fs";

const config = {
  apiBaseUrl: (process.env.MDSTACK_API_URL ?? "http://127.0.0.1:8000").replace(/\/+$/, ""),
  streamUrl: process.env.MDSTACK_STREAM_URL ?? "http://127.0.0.1:8001/stream",
  apiKey: process.env.MDSTACK_API_KEY || null,
};
const outDir = process.argv[2] ?? "dist";
mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/config.json`, JSON.stringify(config, null, 2) + "\n");
console.log(`wrote ${outDir}/config.json: api ${config.apiBaseUrl}, stream ${config.streamUrl}, key ${config.apiKey ? "set" : "none"}`);
