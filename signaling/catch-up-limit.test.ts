/**
 * The bound on catch-ups at once (`CATCHUP_MAX_CONCURRENT`): while the node runs as many instant starts as it may, a
 * joining web player starts at the publisher's next keyframe instead (no replay through the server); the slot
 * comes back when a catch-up switches to live or its viewer leaves.
 */
import { ObsPublisher, SocketClient, SocketViewer, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

let server: SfuTestServer;
beforeAll(async () => {
  server = await startSfuTestServer({ env: { MEDIA_WORKERS: '1', CATCHUP_MAX_CONCURRENT: '1' } });
});
afterAll(() => server?.close());

async function join(channelId: string): Promise<{ socket: SocketClient; viewer: SocketViewer }> {
  const socket = await SocketClient.connect(server.url);
  const viewer = new SocketViewer(socket, channelId);
  await viewer.start();
  return { socket, viewer };
}

const caughtUp = (v: SocketViewer) => v.consumers.some((c) => c.standby);

describe('catch-ups at once', () => {
  it('past the bound a viewer starts at the next keyframe; the slot returns at the switch', { timeout: 60_000 }, async () => {
    const { channelId, streamKey } = await server.streamer();
    // keyframes every 4 s: a catch-up lasts from 1.75 s (until the next keyframe) to 8 s
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { keyframeInterval: 4, seconds: 8 } });
    await pub.connected();
    await waitUntil(() => pub.counters.keyframes >= 1 && pub.counters.frames >= 15, 10_000, 'publisher past its first keyframe');
    const slots = server.sfu.catchUps;

    const a = await join(channelId);
    expect(caughtUp(a.viewer)).toBe(true);
    expect(slots.busy).toBe(1);
    // the one slot is taken: b gets the live program, paused until its keyframe, and no replay
    const b = await join(channelId);
    expect(caughtUp(b.viewer)).toBe(false);
    expect(slots.refused).toBe(1);
    // a picture from the GOP cache (captured before it joined) for a, the next live keyframe for b
    await waitUntil(() => a.viewer.receiver.video.firstFrameDecodable !== null, 5000, 'a: first frame');
    expect(a.viewer.receiver.video.firstFrameDecodable).toBe(true);
    await waitUntil(() => b.viewer.receiver.video.firstFrameDecodable !== null, 9000, 'b: first frame at the next keyframe');
    expect(b.viewer.receiver.video.firstFrameDecodable).toBe(true);

    await a.socket.waitFor('dvr.switch', () => true, 9000);
    expect(slots.busy).toBe(0);
    const c = await join(channelId);
    expect(caughtUp(c.viewer)).toBe(true);
    // a viewer leaving in the middle of its catch-up gives its slot back too
    c.viewer.close();
    c.socket.close();
    await waitUntil(() => slots.busy === 0, 5000, 'slot back after the viewer left');

    for (const v of [a, b]) {
      v.viewer.close();
      v.socket.close();
    }
    await pub.stop();
  });
});
