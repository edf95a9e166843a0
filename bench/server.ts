/** Starts whipcast as a child process on loopback (so its CPU is measured apart from the bots) and prepares a channel. */
import { startWhipcastProcess, type WhipcastProcess } from '@whipcast/testkit';
import { children } from './proc.ts';
import type { Target } from './sfu-bench.ts';

export type BenchServer = WhipcastProcess;

/** `env.NODE_URL = 'self'` is replaced by the server's own URL (a cluster node). `nodeArgs`: e.g. `--cpu-prof`. */
export function startServer(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<BenchServer> {
  // every bot joins from 127.0.0.1: the per-address caps meant for the public would refuse the audience
  return startWhipcastProcess(
    {
      WHIP_RATE_LIMIT_PER_MINUTE: '100000',
      REGISTER_RATE_PER_HOUR: '100000',
      WS_MAX_TRANSPORTS_PER_ADDRESS: '100000',
      WS_MAX_SOCKETS_PER_ADDRESS: '100000',
      ...env,
    },
    { inherit: true, nodeArgs },
  );
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

/** Turns "Save past broadcasts" off for a channel (it is on by default). */
export async function stopRecording(url: string, ch: { streamId: string; token: string }): Promise<void> {
  const res = await fetch(`${url}/api/live/streams/${ch.streamId}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ch.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'bench, not recorded', description: '', saveRecordings: false }),
  });
  if (res.status !== 200) throw new Error(`turning recording off failed: ${res.status}`);
}

/** The SFU benchmark's target for a channel on a whipcast process: its Node process is "main", its mediasoup children the workers. */
export function whipcastTarget(
  server: BenchServer,
  ch: { streamId: string; key: string },
  opts: { name?: string; via?: 'whep' | 'socket' } = {},
): Target {
  const pid = server.pid;
  return {
    name: opts.name ?? 'whipcast',
    url: server.url,
    streamId: ch.streamId,
    key: ch.key,
    via: opts.via ?? 'whep',
    mainPids: pid ? [pid] : [],
    workerPids: () => (pid ? children(pid, /mediasoup/) : []),
  };
}
