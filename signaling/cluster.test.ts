/**
 * Several machines: three whipcast node processes sharing one real Postgres
 * (an origin and two edges) on loopback. Viewers on each edge receive the
 * origin's channel through PipeTransports, chat and presence cross nodes,
 * and losing an edge or the origin has the documented outcome.
 */
import { randomBytes } from 'node:crypto';
import { createScratchPostgres } from '@whipcast/db/testing';
import {
  ObsPublisher,
  SocketClient,
  SocketViewer,
  startWhipcastProcess,
  waitUntil,
  WhepViewer,
  type MediaReceiver,
  type WhipcastProcess,
} from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiAuthResult, ApiStream } from './api.ts';
import { nodeToken } from './cluster/node.ts';

const SECRET = randomBytes(32).toString('base64url');

type Node = WhipcastProcess & { name: string };

async function startNode(name: string, databaseUrl: string): Promise<Node> {
  const node = await startWhipcastProcess(
    {
      DATABASE_URL: databaseUrl,
      WHIPCAST_SECRET: SECRET,
      NODE_URL: 'self',
      NODE_ID: name,
      NODE_HEARTBEAT_SECONDS: '1',
      NODE_EXPIRY_SECONDS: '5',
      LOG_LEVEL: 'info',
    },
    { readyTimeoutMs: 30_000 },
  );
  return Object.assign(node, { name });
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function register(node: Node): Promise<ApiAuthResult & { auth: { authorization: string } }> {
  const session = await json<ApiAuthResult>(`${node.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `u_${randomBytes(4).toString('hex')}`, password: 'correct horse battery' }),
  });
  return { ...session, auth: { authorization: `Bearer ${session.token}` } };
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const flowing = async (r: MediaReceiver, what: string) => {
  const v = r.video.packets;
  const a = r.audio.packets;
  await waitUntil(() => r.video.packets > v + 20 && r.audio.packets > a + 10 && r.video.keyframes >= 1, 10_000, what);
};

const relaysOut = async (node: Node) => {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return Number(/^whipcast_relays_out (\d+)/m.exec(text)?.[1] ?? NaN);
};

let scratch: Awaited<ReturnType<typeof createScratchPostgres>>;
let origin: Node;
let edgeA: Node;
let edgeB: Node;
let edgeC: Node | undefined;
const closers: (() => void)[] = [];

beforeAll(async () => {
  scratch = await createScratchPostgres();
  // one node first: it applies the migrations
  origin = await startNode('origin', scratch.url);
  [edgeA, edgeB] = await Promise.all([startNode('edge-a', scratch.url), startNode('edge-b', scratch.url)]);
}, 90_000);

afterAll(async () => {
  for (const c of closers) c();
  await Promise.all([origin, edgeA, edgeB, edgeC].filter((n): n is Node => !!n).map((n) => n.kill()));
  await scratch?.drop();
});

async function socketViewer(node: Node, channelId: string) {
  const socket = await SocketClient.connect(node.url);
  closers.push(() => socket.close());
  await socket.request({ t: 'chat.join', room: channelId });
  const viewer = new SocketViewer(socket, channelId);
  closers.push(() => viewer.close());
  await viewer.start();
  return { socket, viewer };
}

describe('several nodes sharing one Postgres', () => {
  it(
    'serves one channel from an origin through two edges; survives losing an edge, then the origin; follows OBS to another node',
    { timeout: 150_000 },
    async () => {
      const dump = () =>
        [origin, edgeA, edgeB, edgeC]
          .filter((n): n is Node => !!n)
          .map((n) => `--- ${n.name}\n${n.log.join('').slice(-4000)}`)
          .join('\n');
      try {
        const streamer = await register(origin);
        const me = await json<ApiStream>(`${origin.url}/api/live/streams/me`, { headers: streamer.auth });
        const { streamKey } = await json<{ streamKey: string }>(`${origin.url}/api/live/streams/me/key`, { headers: streamer.auth });
        let pub = await ObsPublisher.publish({ url: `${origin.url}/whip`, token: streamKey });
        closers.push(() => pub.drop());
        await pub.connected();
        await eventually(
          async () => (await json<ApiStream>(`${edgeB.url}/api/live/streams/${me.id}`)).status === 'live',
          10_000,
          'live as seen from edge B',
        );

        // a socket viewer on each edge and a WHEP player on edge B (still one relay per edge), a chatter watching presence on the origin
        const a = await socketViewer(edgeA, me.id);
        const b = await socketViewer(edgeB, me.id);
        const whep = await WhepViewer.watch({ url: `${edgeB.url}/whep/${me.id}` });
        closers.push(() => whep.close());
        await flowing(a.viewer.receiver, 'viewer on edge A');
        await flowing(b.viewer.receiver, 'viewer on edge B');
        await flowing(whep.receiver, 'WHEP player on edge B');
        expect(await relaysOut(origin)).toBe(2);
        expect(await relaysOut(edgeA)).toBe(0);

        const watcher = await SocketClient.connect(origin.url);
        closers.push(() => watcher.close());
        const joined = await watcher.request({ t: 'chat.join', room: me.id });
        expect(joined.viewers).toBe(3);
        await watcher.waitFor('presence', (f) => f.room === me.id && f.viewers === 3 && f.chatters === 3, 5000);
        await b.socket.waitFor('presence', (f) => f.room === me.id && f.viewers === 3 && f.chatters === 3, 5000);
        const listed = await json<{ streams: ApiStream[] }>(`${edgeA.url}/api/live/streams`);
        expect(listed.streams.find((s) => s.id === me.id)?.viewerCount).toBe(3);

        // chat sent on edge A reaches sockets on the origin and on edge B
        const fan = await register(edgeA);
        await a.socket.request({ t: 'auth', token: fan.token });
        const sent = await a.socket.request({ t: 'chat.send', room: me.id, text: 'hello from edge A' });
        for (const s of [watcher, b.socket]) {
          const got = await s.waitFor('chat.message', (f) => f.message.id === sent.message.id, 5000);
          expect(got.message.text).toBe('hello from edge A');
        }

        // the relay to edge A breaks while the origin stays live: edge A notices the silence and pulls again
        const nodeAuth = { authorization: `Bearer ${nodeToken(SECRET)}` };
        const { relays } = await json<{ relays: { id: string; peer: string }[] }>(`${origin.url}/internal/relays`, { headers: nodeAuth });
        expect(relays.map((r) => r.peer).sort()).toEqual(['edge-a', 'edge-b']);
        const toA = relays.find((r) => r.peer === 'edge-a')!;
        expect((await fetch(`${origin.url}/internal/relays/${toA.id}`, { method: 'DELETE', headers: nodeAuth })).status).toBe(204);
        expect(await relaysOut(origin)).toBe(1);
        await eventually(async () => (await relaysOut(origin)) === 2, 20_000, 'edge A relays the channel again');
        await flowing(a.viewer.receiver, 'viewer on edge A after its relay was re-made');
        expect(a.socket.pushes.filter((f) => f.t === 'stream.offline')).toEqual([]);

        // edge B is lost: its viewers stop counting everywhere, the origin stops relaying to it, edge A is unaffected
        await edgeB.kill();
        await watcher.waitFor('presence', (f) => f.room === me.id && f.viewers === 1 && f.chatters === 2, 15_000);
        await eventually(async () => (await relaysOut(origin)) === 1, 10_000, 'origin stops relaying to the lost edge');
        await flowing(a.viewer.receiver, 'viewer on edge A after edge B was lost');

        // the origin is lost: edge A's viewers are told the channel is offline, and the database agrees
        await origin.kill();
        const offline = await a.socket.waitFor('stream.offline', (f) => f.room === me.id, 15_000);
        expect(offline.reason).toMatch(/origin node lost|origin/);
        expect((await json<ApiStream>(`${edgeA.url}/api/live/streams/${me.id}`)).status).toBe('offline');

        // OBS reconnects to edge A: the channel is re-homed there and its viewer watches again
        pub.drop();
        pub = await ObsPublisher.publish({ url: `${edgeA.url}/whip`, token: streamKey });
        await pub.connected();
        await a.socket.waitFor('stream.live', (f) => f.room === me.id, 10_000);
        await a.viewer.live();
        await flowing(a.viewer.receiver, 'viewer on edge A after the channel moved there');
        expect((await json<ApiStream>(`${edgeA.url}/api/live/streams/${me.id}`)).status).toBe('live');

        // a new node joins and relays it; then OBS moves there while edge A still runs: edge A's viewer
        // follows through a relay from the new origin, nobody sees the channel go offline
        const nodeC = await startNode('edge-c', scratch.url);
        edgeC = nodeC;
        const c = await socketViewer(nodeC, me.id);
        await flowing(c.viewer.receiver, 'viewer on edge C');
        const offlineBefore = a.socket.pushes.filter((f) => f.t === 'stream.offline').length;
        // (the new session starts before the old one is dropped: a publisher silent past PUBLISHER_TIMEOUT_MS would end the channel)
        const moved = await ObsPublisher.publish({ url: `${nodeC.url}/whip`, token: streamKey });
        await moved.connected();
        pub.drop();
        pub = moved;
        await eventually(async () => (await relaysOut(nodeC)) === 1, 10_000, 'the new origin relays to edge A');
        await flowing(a.viewer.receiver, 'viewer on edge A, now relayed from edge C');
        await flowing(c.viewer.receiver, 'viewer on edge C, now on its own publisher');
        expect(a.socket.pushes.filter((f) => f.t === 'stream.offline')).toHaveLength(offlineBefore);
        expect((await json<ApiStream>(`${edgeA.url}/api/live/streams/${me.id}`)).status).toBe('live');
        await pub.stop();
        await a.socket.waitFor('stream.offline', (f) => f.room === me.id && !/origin/.test(f.reason), 10_000);
      } catch (err) {
        console.error(dump());
        throw err;
      }
    },
  );

  it('refuses relay requests without the node credential', async () => {
    const res = await fetch(`${edgeA.url}/internal/relays`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
      body: JSON.stringify({ streamId: '00000000-0000-4000-8000-000000000000', node: 'x', endpoint: { ip: '127.0.0.1', port: 9 } }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
  });
});
