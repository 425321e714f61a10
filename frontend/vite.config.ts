/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

// Dev server only: the API and the gateway are proxied under the page's origin
// (no CORS needed), and /config.json points at the proxies. As the gateway's
// own /api does, the dev proxy adds the read key (MDSTACK_API_KEY) server side:
// it never reaches the page. A build never contains a config.json: the gateway
// serves one, a static host generates one (`npm run config`).
const apiTarget = process.env.MDSTACK_API_URL ?? "http://127.0.0.1:8000";
const gatewayTarget = process.env.MDSTACK_GATEWAY_URL ?? "http://127.0.0.1:8001";
const apiKey = process.env.MDSTACK_API_KEY || null;

function devConfigJson(): Plugin {
  return {
    name: "mdstack-dev-config",
    apply: "serve",
    configureServer(server) {
      server.middlewares.use("/config.json", (_req, res) => {
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            apiBaseUrl: "./api",
            streamUrl: "./stream",
            public: apiKey === null,
          }),
        );
      });
    },
  };
}

export default defineConfig({
  base: "./",
  plugins: [react(), devConfigJson()],
  server: {
    proxy: {
      "/api": {
        target: apiTarget,
        changeOrigin: true,
        rewrite: (path) => path.replace(/^\/api/, ""),
        headers: apiKey ? { "x-api-key": apiKey } : {},
      },
      "/stream": { target: gatewayTarget, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node", // component tests (*.test.tsx) ask for jsdom in their first line
  },
});
