/**
 * Issue #13 item 5: keyframe requests reaching a publisher are coalesced per channel. Twelve WHEP viewers
 * watch; each of their video consumers asks for a keyframe five times within a second (what a burst of
 * viewers' PLIs does: the same worker path to the program producer); the publisher (which, like OBS,
 * counts the PLI/FIR it receives) gets at most about one a second, not sixty.
 * (Viewers joining do not make such a burst: instant start serves them from the GOP cache.)
 * Two layers coalesce: mediasoup's worker (a producer with a keyframe request pending does not pass more on:
 * the 60 requests reach the program transport as 1–2) and ProgramTrack (at most one a second to the source).
 * With ProgramTrack's limit switched off this still passes (2 reach the publisher): the worker's layer alone holds.
 */
import { ObsPublisher, registerStreamer, waitLive, WhepViewer } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

const VIEWERS = 12;

let server: SfuTestServer;

beforeAll(async () => {
  server = await startSfuTestServer({
    env: { MEDIA_WORKERS: '1' },
  });
}, 60_000);
afterAll(async () => {
  await server?.close();
});

describe('keyframe requests to the publisher', () => {
  it(
    `${VIEWERS} viewers asking for keyframes in a burst: at most about one a second reaches the publisher`,
    { timeout: 60_000 },
    async () => {
      const streamer = await registerStreamer(server.url);
      const pub = await ObsPublisher.publish({ url: streamer.whipUrl, token: streamer.streamKey });
      const viewers: WhepViewer[] = [];
      try {
        await pub.connected();
        await waitLive(server.url, streamer.id);
        viewers.push(...(await Promise.all(Array.from({ length: VIEWERS }, () => WhepViewer.watch({ url: streamer.whepUrl })))));
        await Promise.all(viewers.map((v) => v.connected()));
        await new Promise((r) => setTimeout(r, 3000)); // past the instant-start switch to live
        expect(viewers.every((v) => v.receiver.video.packets > 0)).toBe(true);
        const channel = server.sfu.liveChannels().find((c) => c.id === streamer.id)!;
        const consumers = channel.viewers().flatMap((v) => v.currentConsumers().filter((c) => c.kind === 'video'));
        expect(consumers).toHaveLength(VIEWERS);
        const before = pub.counters.plisReceived;
        const started = performance.now();
        for (let round = 0; round < 5; round++) {
          await Promise.all(consumers.map((c) => c.requestKeyFrame()));
          await new Promise((r) => setTimeout(r, 150));
        }
        await new Promise((r) => setTimeout(r, 500)); // the last requests arrive
        const seconds = (performance.now() - started) / 1000;
        const requests = pub.counters.plisReceived - before;
        console.log(`${VIEWERS * 5} viewer keyframe requests in ${seconds.toFixed(1)} s: ${requests} reached the publisher`);
        expect(requests).toBeGreaterThan(0); // they do reach it
        expect(requests).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
      } finally {
        for (const v of viewers) v.close();
        await pub.stop();
      }
    },
  );
});
