/**
 * Finds the mediasoup worker binary: MEDIASOUP_WORKER_BIN, else the one
 * `scripts/mediasoup-worker.sh` built into the cache (same key: mediasoup
 * version + patch hash).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as mediasoup from 'mediasoup';

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.WHIPCAST_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whipcast');
}

export function mediasoupVersion(): string {
  return mediasoup.version;
}

/** Where the build script caches the worker for this mediasoup version and patch. */
export function cachedWorkerPath(env: NodeJS.ProcessEnv = process.env): string {
  const version = mediasoupVersion();
  const patch = fileURLToPath(new URL(`./worker-build/mediasoup-${version}.patch`, import.meta.url));
  const hash = createHash('sha256').update(readFileSync(patch)).digest('hex').slice(0, 12);
  return join(cacheDir(env), 'mediasoup-worker', `${version}-${hash}`, 'mediasoup-worker');
}

export function resolveWorkerBin(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEDIASOUP_WORKER_BIN) return env.MEDIASOUP_WORKER_BIN;
  const path = cachedWorkerPath(env);
  if (!existsSync(path)) {
    throw new Error(`mediasoup worker not built (expected ${path}): run \`bash scripts/mediasoup-worker.sh\``);
  }
  return path;
}
