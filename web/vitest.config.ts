import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Component tests (jsdom). Plain vite-plugin-svelte rather than the SvelteKit
 * plugin, which reads its config from the process's working directory (the
 * repo root when all projects run together). The end-to-end tests in e2e/ run
 * in the server project against real Chromium.
 */
export default defineConfig({
  root: here('.'),
  plugins: [svelte({ configFile: false }), svelteTesting()],
  resolve: { alias: { $lib: here('./src/lib'), $shared: here('../signaling') } },
  test: { name: 'web', include: ['src/**/*.test.ts'], environment: 'jsdom' },
});
