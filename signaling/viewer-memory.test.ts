/**
 * Per-viewer memory (issue #17 goal 6): viewers who leave leave nothing behind in whipcast. After rounds of
 * socket viewers (instant start: a catch-up replay each) and WHEP viewers joining, watching and leaving, no
 * server-side viewer object nor its mediasoup transport can still be reached (they are garbage-collected), the
 * worker holds none of their transports, consumers or routers after any round, and the worker process gives memory
 * back to the system when they leave (jemalloc, `WORKER_ALLOCATOR`).
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ObsPublisher, SocketClient, SocketViewer, waitUntil, WhepViewer, type MediaReceiver } from '@whipcast/testkit';
import type { Channel } from '@whipcast/sfu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let server: SfuTestServer;
beforeAll(async () => {
  server = await startSfuTestServer({ env: { MEDIA_WORKERS: '1', WORKER_ALLOCATOR: process.env.WORKER_ALLOCATOR ?? 'auto' } });
});
afterAll(() => server?.close());

const SOCKET_VIEWERS = 12;
const WHEP_VIEWERS = 4;
const ROUNDS = 3;

/** What the worker holds: routers, and transports and consumers of the channel's router. */
async function workerObjects(channel: Channel) {
  const worker = server.sfu.pool.workers[0]!.worker;
  const [w, r] = await Promise.all([worker.dump(), channel.router.dump()]);
  const consumers = r.mapProducerIdConsumerIds.reduce((n, e) => n + e.values.length, 0);
  return { routers: w.routerIds.length, transports: r.transportIds.length, consumers };
}

/** The worker process's resident memory, MB. */
function workerRssMb(): number {
  const pid = server.sfu.pool.workers[0]!.worker.pid;
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

const receiving = (r: MediaReceiver) => r.video.packets > 50 && r.audio.packets > 10;

/** Registers the channel's viewers and their transports; a function of its own, so no local of the test keeps one. */
function watch(registry: FinalizationRegistry<string>, channel: Channel): number {
  let n = 0;
  for (const v of channel.viewers()) {
    registry.register(v, `viewer ${v.id}`);
    registry.register(v.transport, `transport ${v.transport.id}`);
    n += 2;
  }
  return n;
}

/** Collects garbage until every registered object was finalized, or the deadline passes. */
async function collected(alive: () => number, ms = 10_000): Promise<number> {
  const deadline = Date.now() + ms;
  while (alive() > 0 && Date.now() < deadline) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return alive();
}

describe('per-viewer memory', () => {
  it('viewers that leave are collected, and the worker returns to where it was', { timeout: 120_000 }, async () => {
    const { channelId, streamKey } = await server.streamer();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { keyframeInterval: 1, seconds: 4 } });
    await pub.connected();
    await waitUntil(() => server.sfu.channel(channelId)?.live === true, 5000, 'live');
    const channel = server.sfu.channel(channelId)!;
    const before = await workerObjects(channel);

    let finalized = 0;
    const registry = new FinalizationRegistry<string>(() => finalized++);
    let registered = 0;
    const heapMb: number[] = [];
    const rss = { before: workerRssMb(), watching: [] as number[], left: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const sockets: { socket: SocketClient; viewer: SocketViewer }[] = [];
      for (let i = 0; i < SOCKET_VIEWERS; i++) {
        const socket = await SocketClient.connect(server.url);
        const viewer = new SocketViewer(socket, channelId, { frames: false });
        await viewer.start();
        sockets.push({ socket, viewer });
      }
      const wheps: WhepViewer[] = [];
      for (let i = 0; i < WHEP_VIEWERS; i++) wheps.push(await WhepViewer.watch({ url: `${server.url}/whep/${channelId}`, frames: false }));
      await waitUntil(
        () => sockets.every((s) => receiving(s.viewer.receiver)) && wheps.every((w) => receiving(w.receiver)),
        15_000,
        'every viewer receiving',
      );
      // every socket viewer caught up from the GOP cache and switched to live (its replay closed after the linger)
      await Promise.all(sockets.map((s) => s.socket.waitFor('dvr.switch', () => true, 5000)));
      expect(channel.viewerCount).toBe(SOCKET_VIEWERS + WHEP_VIEWERS);
      registered += watch(registry, channel);
      rss.watching.push(workerRssMb());
      expect((await workerObjects(channel)).consumers).toBeGreaterThanOrEqual(2 * (SOCKET_VIEWERS + 2)); // + the program's taps

      for (const s of sockets) {
        s.viewer.close();
        s.socket.close();
      }
      await Promise.all(wheps.map((w) => w.stop()));
      for (const w of wheps) w.close();
      await waitUntil(() => channel.viewers().length === 0, 5000, 'every viewer gone from the channel');
      await new Promise((r) => setTimeout(r, 1200)); // a switch's lingering replay closes within 1 s
      expect(await collected(() => registered - finalized), `round ${round}: viewer objects still reachable`).toBe(0);
      expect(await workerObjects(channel)).toEqual(before);
      await new Promise((r) => setTimeout(r, 1500));
      rss.left.push(workerRssMb());
      gc();
      heapMb.push(process.memoryUsage().heapUsed / 2 ** 20);
    }
    // reported, not judged: the heap also grows with time on its own (the live recording's sample tables), so the
    // objects above are the test of what viewers leave behind
    const perViewerKb = ((heapMb.at(-1)! - heapMb[0]!) * 1024) / ((ROUNDS - 1) * (SOCKET_VIEWERS + WHEP_VIEWERS));
    console.log(`heap after each round: ${heapMb.map((m) => m.toFixed(1)).join(', ')} MB (${perViewerKb.toFixed(1)} kB per viewer)`);
    console.log(
      `worker RSS: ${rss.before.toFixed(1)} MB before, ${rss.watching.map((m) => m.toFixed(1)).join(' / ')} watching, ` +
        `${rss.left.map((m) => m.toFixed(1)).join(' / ')} after they left`,
    );
    // jemalloc (WORKER_ALLOCATOR=auto, libjemalloc2 installed) gives back about half of what the viewers took within
    // 1.5 s (the rest is kept for the next viewers: round after round it does not grow): 16.7 MB before, 24.0-24.3
    // watching, 20.3-20.9 after. With WORKER_ALLOCATOR=system nothing comes back (14.9, 21.7-22.5, 21.9-22.5): fails.
    for (let round = 0; round < ROUNDS; round++) {
      const took = rss.watching[round]! - rss.before;
      expect(rss.watching[round]! - rss.left[round]!, `round ${round}: MB the worker gave back of ${took.toFixed(1)}`).toBeGreaterThan(
        took / 3,
      );
    }
    expect(channel.live).toBe(true);
    await pub.stop();
  });
});
