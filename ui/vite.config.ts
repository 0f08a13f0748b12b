import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

// The MoneyFlow binary serves the built canvas under `/ui/`; the API lives at
// the root of the same origin. During `npm run dev` (and `vite preview`, which
// the e2e runner uses when the server does not serve the UI itself) the API
// paths are proxied to MONEYFLOW_URL.
const backend = process.env.MONEYFLOW_URL ?? 'http://127.0.0.1:8123';
const apiPaths = ['/tasks', '/companies', '/payment-rules', '/payment', '/runs', '/openapi.json', '/health'];
const proxy = Object.fromEntries(apiPaths.map((path) => [path, { target: backend, changeOrigin: true }]));

export default defineConfig({
  base: '/ui/',
  plugins: [react()],
  server: { port: 5173, proxy },
  preview: { port: 4173, proxy },
  build: { outDir: 'dist', sourcemap: true, chunkSizeWarningLimit: 1024 },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    // Tests assert results, not speed: a shared, loaded machine can take a
    // generated-input test far past vitest's 5 s default.
    testTimeout: 60_000,
  },
});
