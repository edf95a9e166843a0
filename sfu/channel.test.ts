/**
 * The close cascade with real peers on real workers: a channel with a live
 * OBS-like publisher, WHEP viewers, socket viewers mid catch-up (replays and
 * standby consumers), an audience spread over two workers (pipeToRouter) and
 * a relay to another node. Closing the channel leaves no mediasoup object
 * open on any worker, and every object it owned reports closed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ObsPublisher, waitUntil, WhepViewer } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from './codecs.ts';
import { Sfu } from './sfu.ts';
import { resolveWorkerBin } from './worker-bin.ts';

let sfu: Sfu;
let http: Server;
let base: string;
const CHANNEL = 'c0ffee00-0000-4000-8000-000000000001';

beforeAll(async () => {
  sfu = await Sfu.create({
    workerBin: resolveWorkerBin(process.env),
    numWorkers: 2,
    listenIp: '127.0.0.1',
    port: 0,
    publisherTimeoutMs: 10_000,
    routerMaxViewers: 2,
  });
  // the least WHIP/WHEP a publisher and players need: POST an offer, get the answer
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const reply = async () => {
        if (req.url === '/whip') {
          const ingest = await (await sfu.openChannel(CHANNEL)).publish(body);
          return { location: `/whip/sessions/${ingest.id}`, answer: ingest.answer };
        }
        const viewer = await sfu.channel(CHANNEL)!.watch(body);
        return { location: `/whep/sessions/${viewer.id}`, answer: viewer.answer };
      };
      reply().then(
        (r) => res.writeHead(201, { 'content-type': 'application/sdp', location: r.location }).end(r.answer),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});
afterAll(async () => {
  http?.close();
  await sfu?.close();
});

async function openObjects(): Promise<{ routers: number; transports: number }> {
  let routers = 0;
  let transports = 0;
  for (const w of sfu.pool.workers) {
    routers += (await w.worker.dump()).routerIds.length;
    transports += (await w.webRtcServer.dump()).webRtcTransportIds.length;
  }
  return { routers, transports };
}

describe('closing a channel', () => {
  it('closes its ingest, viewers, replays, relays, program, audience routers and router: nothing stays open on any worker', async () => {
    const pub = await ObsPublisher.publish({ url: `${base}/whip`, token: 'x' });
    await pub.connected();
    await waitUntil(() => sfu.channel(CHANNEL)?.live === true, 5000, 'live');
    const channel = sfu.channel(CHANNEL)!;
    const ingest = channel.ingest!;
    await waitUntil(() => channel.dvr.lastKeyframe() !== null, 5000, 'a keyframe in the GOP cache');

    const wheps = [await WhepViewer.watch({ url: `${base}/whep` }), await WhepViewer.watch({ url: `${base}/whep` })];
    for (const w of wheps) await w.connected();
    const sockets = [];
    for (let i = 0; i < 5; i++) {
      const v = await channel.createSocketViewer();
      const consumers = await v.consume(sfu.capabilities);
      expect(consumers.some((c) => c.standby)).toBe(true); // instant start: a replay plus standby consumers
      sockets.push(v);
    }
    // a relay to another node: its pipe end here is a scratch router's
    const scratch = await sfu.pool.workers[1]!.worker.createRouter({ mediaCodecs: MEDIA_CODECS });
    const far = await scratch.createPipeTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, enableSrtp: true });
    const relay = await channel.serveRelay('edge-1', { ip: '127.0.0.1', port: far.tuple.localPort, srtpParameters: far.srtpParameters });
    scratch.close();

    expect(channel.viewerCount).toBe(7);
    expect(channel.placement().map((p) => p.worker)).toEqual([0, 1]); // spread over both workers
    const before = await openObjects();
    expect(before.routers).toBeGreaterThanOrEqual(4); // channel + socket + WHEP routers on both workers
    expect(before.transports).toBe(1 + 2 + 5);

    // one viewer alone: its transport, consumers and catch-up replay close with it, nothing else does
    const leaving = sockets.pop()!;
    const transportsOf = async (r: typeof leaving.router) => (await r.dump()).transportIds.length;
    const onItsRouter = await transportsOf(leaving.router);
    leaving.close();
    leaving.close();
    expect(leaving.closed).toBe(true);
    expect(await transportsOf(leaving.router)).toBe(onItsRouter - 2); // its WebRTC transport and its replay's DirectTransport
    expect(channel.viewerCount).toBe(6);

    const events: string[] = [];
    channel.on('offline', (reason) => events.push(`offline: ${reason}`));
    channel.on('viewers', (n) => events.push(`viewers ${n}`));
    const viewerCloses: boolean[] = [];
    for (const v of channel.viewers()) v.on('close', (_reason, byServer) => viewerCloses.push(byServer));
    channel.close('test');
    channel.close('twice'); // idempotent

    expect(channel.closed).toBe(true);
    expect(ingest.closed).toBe(true);
    expect(relay.closed).toBe(true);
    expect([...sockets, ...channel.viewers()].every((v) => v.closed)).toBe(true);
    expect(viewerCloses).toEqual(Array(6).fill(true)); // the server ended them: socket clients rebuild
    expect(events[0]).toBe('offline: test');
    expect(events.at(-1)).toBe('viewers 0');
    expect(sfu.channel(CHANNEL)).toBeUndefined();
    expect(sfu.relays()).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(await openObjects()).toEqual({ routers: 0, transports: 0 });
    expect(sfu.pool.workers.map((w) => w.load)).toEqual([0, 0]);

    pub.drop();
    for (const w of wheps) w.close();
  });
});
