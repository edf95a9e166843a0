/**
 * Viewers who start together share one catch-up: with room for a single catch-up on the node
 * (`CATCHUP_MAX_CONCURRENT=1`), four web players consuming at once all start from the GOP cache (one replay, one
 * slot) and each gets a decodable picture before the publisher's next keyframe.
 */
import { ObsPublisher, SocketClient, SocketViewer, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

let server: SfuTestServer;
beforeAll(async () => {
  server = await startSfuTestServer({ env: { MEDIA_WORKERS: '1', CATCHUP_MAX_CONCURRENT: '1' } });
});
afterAll(() => server?.close());

const VIEWERS = 4;
const caughtUp = (v: SocketViewer) => v.consumers.some((c) => c.standby);

describe('a catch-up shared by viewers who start together', () => {
  it(`${VIEWERS} viewers consuming at once start from the cache in one slot`, { timeout: 60_000 }, async () => {
    const { channelId, streamKey } = await server.streamer();
    // keyframes every 4 s: the next one is seconds away when the viewers join
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { keyframeInterval: 4, seconds: 8 } });
    await pub.connected();
    await waitUntil(() => pub.counters.keyframes >= 1 && pub.counters.frames >= 15, 10_000, 'publisher past its first keyframe');
    const slots = server.sfu.catchUps;
    const bots = await Promise.all(
      Array.from({ length: VIEWERS }, async () => {
        const socket = await SocketClient.connect(server.url);
        return { socket, viewer: new SocketViewer(socket, channelId) };
      }),
    );
    const transports = await Promise.all(bots.map((b) => b.viewer.open()));
    const keyframes = pub.counters.keyframes;
    // the consume requests go out together, as a crowd's do
    await Promise.all(bots.map((b, i) => b.viewer.consume(transports[i])));
    expect(bots.map((b) => caughtUp(b.viewer))).toEqual(bots.map(() => true));
    expect(slots.refused).toBe(0);
    expect(slots.busy).toBe(1);
    await waitUntil(() => bots.every((b) => b.viewer.receiver.video.firstFrameDecodable !== null), 3000, 'every first frame');
    // from the cache: every picture came before the publisher's next keyframe could give one
    expect(pub.counters.keyframes).toBe(keyframes);
    expect(bots.map((b) => b.viewer.receiver.video.firstFrameDecodable)).toEqual(bots.map(() => true));
    // one switch to live for all, and the slot comes back
    await Promise.all(bots.map((b) => b.socket.waitFor('dvr.switch', () => true, 9000)));
    await waitUntil(() => slots.busy === 0, 5000, 'slot back after the switch');
    for (const b of bots) {
      b.viewer.close();
      b.socket.close();
    }
    await pub.stop();
  });
});
