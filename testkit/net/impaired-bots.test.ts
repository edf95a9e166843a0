/**
 * The Node viewer bots behind an impaired link (what `npm run bench` needs for
 * impaired bots): a WHEP bot and a socket bot each behind their own relay
 * losing 5 % keep receiving frames, while the loss shows in their own counters.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ObsPublisher } from '../peers/obs-publisher.ts';
import { SocketViewer } from '../peers/socket-viewer.ts';
import { WhepViewer } from '../peers/whep-viewer.ts';
import { SocketClient } from '../socket-client.ts';
import { registerStreamer, waitLive } from '../streamer.ts';
import { startWhipcastProcess, type WhipcastProcess } from '../whipcast-process.ts';
import { ImpairedPeer } from './impaired-peer.ts';

let server: WhipcastProcess;
beforeAll(async () => {
  server = await startWhipcastProcess();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

it('WHEP and socket bots behind 5 % loss keep receiving frames', { timeout: 60_000 }, async () => {
  const streamer = await registerStreamer(server.url);
  const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey });
  const whepLink = new ImpairedPeer({ toPeer: { loss: 0.05 } });
  const socketLink = new ImpairedPeer({ toPeer: { loss: 0.05 } });
  const socket = await SocketClient.connect(server.url);
  let whep: WhepViewer | null = null;
  const bot = new SocketViewer(socket, streamer.id, { rewriteOffer: (sdp) => socketLink.rewriteSdp(sdp) });
  try {
    await pub.connected();
    await waitLive(server.url, streamer.id);
    whep = await WhepViewer.watch({ url: streamer.whepUrl, rewriteAnswer: (sdp) => whepLink.rewriteSdp(sdp) });
    await whep.connected();
    await bot.start();
    await new Promise((r) => setTimeout(r, 6000));
    for (const [name, link, receiver] of [
      ['whep', whepLink, whep.receiver],
      ['socket', socketLink, bot.receiver],
    ] as const) {
      const c = (await link.counters()).toPeer;
      expect(c.lost / c.packets, name).toBeGreaterThan(0.03);
      // relative bounds: on a loaded machine the publisher itself sends fewer frames in 6 s
      const v = receiver.video;
      expect(v.frames + v.incompleteFrames, name).toBeGreaterThan(60);
      expect(v.frames / (v.frames + v.incompleteFrames), name).toBeGreaterThan(0.5);
      expect(performance.now() - (v.lastFrameAt ?? 0), `${name}: still receiving`).toBeLessThan(1000);
      expect(receiver.video.packets + receiver.audio.packets, name).toBeLessThanOrEqual(c.sent);
    }
  } finally {
    whep?.close();
    bot.close();
    socket.close();
    await whepLink.close();
    await socketLink.close();
    await pub.stop();
  }
});
