/** Starts whipcast as a child process on loopback (so its CPU is measured apart from the bots) and prepares a channel. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface BenchServer {
  url: string;
  pid: number | null;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `env.NODE_URL = 'self'` is replaced by the server's own URL (a cluster node). */
export async function startServer(env: Record<string, string> = {}): Promise<BenchServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'whipcast-bench-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'signaling/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      EMBEDDED_DB_PATH: ':memory:',
      DATA_DIR: dataDir,
      RTC_LISTEN_IP: '127.0.0.1',
      RTC_ANNOUNCED_ADDRESS: '127.0.0.1',
      RTC_PORT: '0',
      MEDIA_WORKERS: '1',
      WHIP_RATE_LIMIT_PER_MINUTE: '100000',
      LOG_LEVEL: 'warn',
      ...env,
      ...(env.NODE_URL === 'self' ? { NODE_URL: url } : {}),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('server did not become ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid ?? null,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers a user and returns its channel id, stream key and session token. */
export async function prepareChannel(url: string): Promise<{ streamId: string; key: string; token: string }> {
  const username = `bench_${Math.random().toString(36).slice(2, 10)}`;
  const reg = await fetch(`${url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: 'benchmark password' }),
  });
  if (reg.status !== 201) throw new Error(`register failed: ${reg.status}`);
  const { token } = (await reg.json()) as { token: string };
  const auth = { authorization: `Bearer ${token}` };
  const me = (await (await fetch(`${url}/api/live/streams/me`, { headers: auth })).json()) as { id: string };
  const key = (await (await fetch(`${url}/api/live/streams/me/key`, { headers: auth })).json()) as { streamKey: string };
  return { streamId: me.id, key: key.streamKey, token };
}
