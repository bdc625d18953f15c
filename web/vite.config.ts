import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Builds the web UI (web/index.html + web/src) into dist/web, which the JobManager serves at `/`.
 * Relative asset URLs (`base: './'`) so the UI also works behind a proxy under a sub path; no CDN,
 * everything bundled. Dev: `npx vite --config web/vite.config.ts` with the mock API
 * (web/dev/mock-server.mjs) or a JobManager behind the proxy below (FLUXO_WEB=http://host:port).
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const api = process.env.FLUXO_WEB ?? 'http://127.0.0.1:8081';
const proxied = ['/overview', '/jobs', '/taskmanagers', '/events', '/metrics'];

export default defineConfig({
  root,
  base: './',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: api, changeOrigin: true }])),
  },
});
