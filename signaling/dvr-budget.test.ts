/**
 * The node's DVR replay budget (`DVR_MAX_REPLAYS`): beyond it a seek is
 * refused with a clear error and the viewer keeps watching live; a viewer
 * already in the past may still move, and a freed replay lets the next one in.
 */
import { nowUs, ObsPublisher, SocketClient, SocketError, SocketViewer, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

let server: TestServer;
beforeAll(async () => {
  // sharing off: b's seek to a's position would join a's replay (signaling/dvr-share.test.ts), and is never refused
  server = await startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', DVR_MAX_REPLAYS: '1', DVR_SHARE_WITHIN_MS: '0' } });
});
afterAll(() => server?.close());

/** A socket viewer of the channel, started (live). */
async function watcher(streamId: string): Promise<{ viewer: SocketViewer; close(): void }> {
  const socket = await SocketClient.connect(server.url);
  const viewer = new SocketViewer(socket, streamId);
  await viewer.start();
  return {
    viewer,
    close: () => {
      viewer.close();
      socket.close();
    },
  };
}

/** Resolves once the viewer decodes a frame whose capture stamp passes `accept` (age in ms). */
function frameAged(viewer: SocketViewer, accept: (ageMs: number) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = viewer.receiver.onFrame((f) => {
      if (f.stamp && accept((nowUs() - f.stamp.captureUs) / 1000)) {
        off();
        resolve();
      }
    });
  });
}

describe('DVR replay budget', () => {
  it('refuses a seek beyond DVR_MAX_REPLAYS, keeps that viewer live, and admits it once a replay ends', async () => {
    const { channelId, streamKey } = await server.streamer();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { keyframeInterval: 1, seconds: 4 } });
    await pub.connected();
    await waitUntil(() => pub.counters.frames >= 30 * 4, 10_000, '4 s of stream recorded');

    const a = await watcher(channelId);
    const b = await watcher(channelId);
    // their instant starts (replays too) hand over to live at the next keyframe (≤ 1 s) and end 1 s later
    await new Promise((r) => setTimeout(r, 3500));
    try {
      const aInPast = frameAged(a.viewer, (ms) => ms > 2500);
      await a.viewer.seek({ offsetMs: 3000 });
      await aInPast; // a watches the past: the one replay the node allows

      const refused = await b.viewer.seek({ offsetMs: 3000 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(SocketError);
      expect((refused as SocketError).code).toBe('unavailable');
      expect((refused as SocketError).message).toMatch(/Too many viewers are watching the past/);
      // b lost nothing: its live picture goes on
      await frameAged(b.viewer, (ms) => ms < 1000);

      // a moves within the past: its own replay is replaced, not a new one added
      const aFurther = frameAged(a.viewer, (ms) => ms > 1500);
      await a.viewer.seek({ deltaMs: 1000 });
      await aFurther;

      // a back to live frees the replay (once its catch-up hands over to live, and the old replay's linger ends): b gets in
      await a.viewer.live();
      const bInPast = frameAged(b.viewer, (ms) => ms > 2500);
      const deadline = Date.now() + 8000;
      for (;;) {
        const r = await b.viewer.seek({ offsetMs: 3000 }).catch((e: unknown) => e);
        if (!(r instanceof SocketError)) break;
        expect(r.code).toBe('unavailable');
        if (Date.now() > deadline) throw new Error('the replay budget was not given back');
        await new Promise((done) => setTimeout(done, 300));
      }
      await bInPast;
    } finally {
      a.close();
      b.close();
      await pub.stop();
    }
  });
});
