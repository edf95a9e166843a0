/**
 * whipcast as a child process on loopback, for tests and benchmarks that need
 * real separate nodes: its own CPU to measure, a process to kill. It runs what
 * `npm start` runs: the bundled `dist/server.js` (rebuilt first if the sources
 * changed, scripts/build-server.mjs), or the sources through tsx with `tsx`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@whipcast/db/test-postgres';
import { buildServer, SERVER_JS, SERVER_NODE_FLAGS } from '../scripts/build-server.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface WhipcastProcess {
  url: string;
  pid: number | null;
  /** The last lines it wrote (when its output is captured). */
  readonly log: string[];
  /** Graceful stop (SIGTERM), then its data directory is removed. */
  stop(): Promise<void>;
  /** SIGKILL: a crashed or lost node. */
  kill(): Promise<void>;
}

export { freePort };

/**
 * Starts whipcast on 127.0.0.1 with an embedded in-memory database unless
 * `env` says otherwise; resolves once `/readyz` answers 200. `NODE_URL: 'self'`
 * becomes the process's own URL (a cluster node). `inherit` passes its output
 * through instead of keeping it in `log`.
 */
export async function startWhipcastProcess(
  env: Record<string, string> = {},
  opts: {
    inherit?: boolean;
    readyTimeoutMs?: number;
    /** Extra arguments to node (e.g. `--cpu-prof`). */
    nodeArgs?: string[];
    /** Run signaling/main.ts through tsx (`npm run dev`) instead of dist/server.js. */
    tsx?: boolean;
  } = {},
): Promise<WhipcastProcess> {
  if (!opts.tsx) await buildServer({ quiet: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'whipcast-node-'));
  const script = opts.tsx ? ['--import', 'tsx', 'signaling/main.ts'] : [...SERVER_NODE_FLAGS, SERVER_JS];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...script], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      EMBEDDED_DB_PATH: ':memory:',
      DATA_DIR: dataDir,
      WEB_DIR: '/nonexistent',
      RTC_LISTEN_IP: '127.0.0.1',
      RTC_ANNOUNCED_ADDRESS: '127.0.0.1',
      RTC_PORT: '0',
      MEDIA_WORKERS: '1',
      LOG_LEVEL: 'warn',
      ...env,
      ...(env.NODE_URL === 'self' ? { NODE_URL: url } : {}),
    },
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const keep = (b: Buffer) => {
    log.push(b.toString());
    if (log.length > 400) log.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const end = async (signal: NodeJS.Signals) => {
    if (running()) child.kill(signal);
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  };
  const node: WhipcastProcess = { url, pid: child.pid ?? null, log, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (!running()) {
      await end('SIGKILL');
      throw new Error(`whipcast exited (${child.exitCode ?? child.signalCode}):\n${log.join('')}`);
    }
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return node;
    if (Date.now() > deadline) {
      await end('SIGKILL');
      throw new Error(`whipcast did not become ready:\n${log.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
