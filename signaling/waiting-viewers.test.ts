/**
 * Viewers who open the page before the streamer goes live (a waiting room, issue #13): their transport is made
 * while the channel is offline, so mediasoup starts its bandwidth estimate at 600 kbit/s, under the lowest layer of
 * OBS's 3-layer 720p ladder (~950 kbit/s on the wire), and forwards them no layer at all until the estimate climbs.
 * Each viewer here does what the web player does: it is in the channel's room (the chat), holds a receive transport
 * made while offline, and consumes on it when `stream.live` is pushed.
 */
import { packetPictureSize } from '@whipcast/sfu';
import { ObsPublisher, registerStreamer, SocketClient, SocketViewer } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

let server: SfuTestServer;

beforeAll(async () => {
  server = await startSfuTestServer({ env: { MEDIA_WORKERS: '1' } });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const VIEWERS = 6;
/** A viewer's first picture after go-live: a keyframe interval (2 s) and some, far short of the estimate's climb. */
const FIRST_PICTURE_MS = 4000;
/** How long each viewer is watched after its first picture. */
const WATCH_MS = 5000;

describe("viewers waiting for OBS's 3-layer 720p ladder to go live", () => {
  it(`all ${VIEWERS} get video within ${FIRST_PICTURE_MS / 1000} s of go-live and keep it`, { timeout: 60_000 }, async () => {
    const streamer = await registerStreamer(server.url);
    const sockets: SocketClient[] = [];
    const viewers: SocketViewer[] = [];
    let pub: ObsPublisher | undefined;
    try {
      for (let i = 0; i < VIEWERS; i++) {
        const socket = await SocketClient.connect(server.url);
        sockets.push(socket);
        await socket.request({ t: 'chat.join', room: streamer.id });
        const viewer = new SocketViewer(socket, streamer.id, {
          congestionControl: true,
          pictureSize: (p) => packetPictureSize('h264', p),
        });
        viewers.push(viewer);
      }
      const transports = await Promise.all(viewers.map((v) => v.open()));
      pub = await ObsPublisher.publish({
        url: streamer.whipUrl,
        token: streamer.streamKey,
        simulcast: { layers: 3 },
        senderReports: true,
        video: { width: 1280, height: 720, kbps: 2500, keyframeInterval: 2, seconds: 20, profile: 'baseline' },
      });
      await pub.connected(); // its media starts once it is connected
      // each one consumes when told the channel is live, as the player does
      await Promise.all(
        viewers.map(async (v, i) => {
          await sockets[i]!.waitFor('stream.live', (f) => f.room === streamer.id, 10_000);
          await v.consume(transports[i]);
        }),
      );
      const deadline = performance.now() + FIRST_PICTURE_MS;
      while (performance.now() < deadline && viewers.some((v) => v.receiver.video.timeToFirstFrameMs === null))
        await new Promise((r) => setTimeout(r, 100));
      const ttff = viewers.map((v) => v.receiver.video.timeToFirstFrameMs);
      const framesBefore = viewers.map((v) => v.receiver.video.frames);
      await new Promise((r) => setTimeout(r, WATCH_MS));
      const frames = viewers.map((v, i) => v.receiver.video.frames - framesBefore[i]!);
      const estimates = await Promise.all(
        viewers.map(async (v) => {
          const t = server.sfu.channel(streamer.id)?.viewer(v.transportId)?.transport;
          return Math.round(((await t?.getStats())?.[0]?.availableOutgoingBitrate ?? 0) / 1000);
        }),
      );
      console.log(
        `first picture after consuming (ms): ${ttff.map((t) => (t === null ? 'none' : Math.round(t))).join(' ')}; ` +
          `frames in the next ${WATCH_MS / 1000} s: ${frames.join(' ')}; ` +
          `sizes: ${viewers.map((v) => (v.receiver.video.size ? v.receiver.video.size.height : 'none')).join(' ')}; ` +
          `estimates now (kbit/s): ${estimates.join(' ')}; freezes: ${viewers.map((v) => v.receiver.video.freezes).join(' ')}`,
      );
      expect(ttff.filter((t) => t === null).length, `viewers with no picture within ${FIRST_PICTURE_MS} ms`).toBe(0);
      // no gap of more than a second between frames from the first picture on (before the floor: one of ~2 s each
      // when the instant start's catch-up handed over to the live layers), and the video still flowing at the end
      expect(viewers.filter((v) => v.receiver.video.freezes > 0).length, 'viewers whose video froze').toBe(0);
      expect(frames.filter((n) => n < (WATCH_MS / 1000) * 30 * 0.8).length, 'viewers whose video stalled').toBe(0);
    } finally {
      for (const v of viewers) v.close();
      for (const s of sockets) s.close();
      await pub?.stop();
    }
  });
});
