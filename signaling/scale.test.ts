/**
 * One machine, every core: a channel's audience fills a router, then spreads
 * to the other worker (pipeToRouter); a worker that dies is replaced and its
 * viewers rebuild (socket viewers are told with `rtc.closed`); losing the
 * channel's own worker takes it offline until OBS's fresh POST.
 */
import { ObsPublisher, SocketClient, SocketViewer, waitUntil, WhepViewer, type MediaReceiver } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

let server: SfuTestServer;
beforeAll(async () => {
  server = await startSfuTestServer({
    env: { MEDIA_WORKERS: '2', ROUTER_MAX_VIEWERS: '2' },
  });
});
afterAll(() => server?.close());

const flowing = async (r: MediaReceiver, what: string) => {
  const v = r.video.packets;
  const a = r.audio.packets;
  await waitUntil(() => r.video.packets > v + 20 && r.audio.packets > a + 10 && r.video.keyframes >= 1, 10_000, what);
};

async function socketViewer(channelId: string): Promise<{ socket: SocketClient; viewer: SocketViewer }> {
  const socket = await SocketClient.connect(server.url);
  await socket.request({ t: 'chat.join', room: channelId });
  const viewer = new SocketViewer(socket, channelId);
  await viewer.start();
  return { socket, viewer };
}

describe('scale: all workers of one machine', () => {
  it('spreads an audience over both workers, survives losing either of them', { timeout: 90_000 }, async () => {
    const user = await server.register();
    const me = (await (await server.api('/api/live/streams/me', { headers: user.auth })).json()) as { id: string };
    const { streamKey } = (await (await server.api('/api/live/streams/me/key', { headers: user.auth })).json()) as { streamKey: string };
    let pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey });
    await pub.connected();
    await waitUntil(() => server.sfu.channel(me.id)?.live === true, 5000, 'live');

    // 4 socket viewers and 2 WHEP viewers, two per router
    const sockets = [];
    for (let i = 0; i < 4; i++) sockets.push(await socketViewer(me.id));
    const wheps = [
      await WhepViewer.watch({ url: `${server.url}/whep/${me.id}` }),
      await WhepViewer.watch({ url: `${server.url}/whep/${me.id}` }),
    ];
    for (const [i, s] of sockets.entries()) await flowing(s.viewer.receiver, `socket viewer ${i}`);
    for (const [i, w] of wheps.entries()) await flowing(w.receiver, `WHEP viewer ${i}`);

    const placement = server.sfu.channel(me.id)!.placement();
    expect(placement.map((p) => p.worker)).toEqual([0, 1]);
    expect(placement.reduce((n, p) => n + p.viewers, 0)).toBe(6);
    for (const p of placement) expect(p.viewers).toBeLessThanOrEqual(2 * p.routers);
    expect(placement.filter((p) => p.channel)).toHaveLength(1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/whipcast_worker_viewers\{worker="1"\} [1-9]/);

    // the other worker dies: it is replaced, its socket viewers are told and rebuild, the rest never notice
    const channelWorker = placement.find((p) => p.channel)!.worker;
    const other = server.sfu.pool.workers.find((w) => w.index !== channelWorker)!;
    const onOther = sockets.filter((s) => server.sfu.channel(me.id)!.viewer(s.viewer.transportId)?.worker === other.index);
    const onChannel = sockets.filter((s) => !onOther.includes(s));
    expect(onOther.length).toBeGreaterThan(0);
    expect(onChannel.length).toBeGreaterThan(0);
    process.kill(other.worker.pid, 'SIGKILL');
    for (const s of onOther) {
      const closed = await s.socket.waitFor('rtc.closed', (f) => f.transportId === s.viewer.transportId, 5000);
      expect(closed.reason).toMatch(/closed/);
      s.viewer.close();
      s.viewer = new SocketViewer(s.socket, me.id);
      await s.viewer.start();
      await flowing(s.viewer.receiver, 'rebuilt socket viewer');
    }
    for (const s of onChannel) await flowing(s.viewer.receiver, 'socket viewer on the surviving worker');
    await waitUntil(() => server.sfu.pool.complete(), 10_000, 'worker replaced');
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect(server.sfu.channel(me.id)?.live).toBe(true);

    // the channel's own worker dies: offline, then OBS's fresh POST brings it back and viewers rebuild
    const watcher = await SocketClient.connect(server.url);
    await watcher.request({ t: 'chat.join', room: me.id });
    const channelSlot = server.sfu.pool.workers.find((w) => w.index === channelWorker)!;
    process.kill(channelSlot.worker.pid, 'SIGKILL');
    await watcher.waitFor('stream.offline', (f) => f.room === me.id, 10_000);
    await waitUntil(() => server.sfu.pool.complete(), 10_000, 'worker replaced');
    pub.drop();
    pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey });
    await pub.connected();
    await watcher.waitFor('stream.live', (f) => f.room === me.id, 10_000);
    for (const s of sockets) {
      await s.socket.waitFor('rtc.closed', (f) => f.transportId === s.viewer.transportId, 5000);
      s.viewer.close();
      s.viewer = new SocketViewer(s.socket, me.id);
      await s.viewer.start();
      await flowing(s.viewer.receiver, 'socket viewer after the channel came back');
    }

    await pub.stop();
    for (const s of sockets) {
      s.viewer.close();
      s.socket.close();
    }
    for (const w of wheps) w.close();
    watcher.close();
  });
});
