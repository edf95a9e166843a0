/**
 * Shared DVR replays: viewers seeking to about the same point in the past
 * share one replay (Node sends each packet once, the worker fans it out), each
 * of them decodes advancing frames of that past; pausing one does not hold the
 * others, and its resume moves it to a replay of its own from where it paused.
 * Frame numbers are the publisher's, read from each decoded frame's stamp.
 */
import { ObsPublisher, SocketClient, SocketViewer, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSfuTestServer, type SfuTestServer } from './testing.ts';

const FPS = 30;
let server: SfuTestServer;
beforeAll(async () => {
  // one replay allowed on the node: the bound counts replays, not viewers (joining one is never refused); no instant
  // start, whose catch-ups would count against it while they run
  server = await startSfuTestServer({
    env: { MEDIA_WORKERS: '1', DVR_SHARE_WITHIN_MS: '2000', DVR_MAX_REPLAYS: '1', INSTANT_START: 'false' },
  });
});
afterAll(() => server?.close());

/** A started socket viewer that keeps the publisher frame number of every frame it decodes, with when. */
async function watcher(streamId: string): Promise<{ viewer: SocketViewer; frames: { n: number; at: number }[]; close(): void }> {
  const socket = await SocketClient.connect(server.url);
  const viewer = new SocketViewer(socket, streamId);
  const frames: { n: number; at: number }[] = [];
  viewer.receiver.onFrame((f) => {
    if (f.stamp) frames.push({ n: f.stamp.frame, at: Date.now() });
  });
  await viewer.start();
  return {
    viewer,
    frames,
    close: () => {
      viewer.close();
      socket.close();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The frames decoded since `t`. */
const since = (frames: { n: number; at: number }[], t: number) => frames.filter((f) => f.at >= t).map((f) => f.n);

describe('shared DVR replays', () => {
  it('three viewers seeking 6 s back share the one replay the node allows; one pausing does not hold the others', async () => {
    const { channelId, streamKey } = await server.streamer();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, video: { keyframeInterval: 1, seconds: 4 } });
    const viewers: Awaited<ReturnType<typeof watcher>>[] = [];
    try {
      await pub.connected();
      await waitUntil(() => pub.counters.frames >= FPS * 8, 12_000, '8 s of stream recorded');
      const channel = server.sfu.channel(channelId)!;
      for (let i = 0; i < 3; i++) viewers.push(await watcher(channelId));
      const [a, b, c] = viewers as [(typeof viewers)[0], (typeof viewers)[0], (typeof viewers)[0]];
      await waitUntil(() => viewers.every((v) => v.frames.length > 0), 5000, 'every viewer decoding live');

      // they seek 6 s back within about a second of each other
      const landed: number[] = [];
      for (const v of viewers) {
        landed.push((await v.viewer.seek({ offsetMs: 6000 })).behindLiveMs);
        await sleep(300);
      }
      expect(channel.replayShares.size).toBe(1);
      expect(channel.replayShares.members).toBe(3);
      // the position snaps to the shared replay's: at or before 6 s back, at most 2 s (DVR_SHARE_WITHIN_MS) before the
      // keyframe at or before it (≤ 1 s)
      for (const ms of landed) expect(ms).toBeGreaterThan(6000 - 100);
      for (const ms of landed) expect(ms).toBeLessThan(6000 + 1000 + 2000 + 100);

      // each decodes the past: advancing frames, 5.5–9.2 s behind what the publisher sends, the same ones as the others
      await sleep(2500); // the joiners' pictures start at the replay's next keyframe (≤ 2 s)
      const t0 = Date.now();
      await sleep(1500);
      const published = pub.counters.frames;
      const seen = viewers.map((v) => since(v.frames, t0));
      for (const s of seen) {
        expect(s.length).toBeGreaterThan(FPS); // ≥ 1 s of frames in 1.5 s
        expect(s.at(-1)! - s[0]!).toBeGreaterThan(FPS);
        expect(published - s.at(-1)!).toBeGreaterThan(FPS * 5.5);
        expect(published - s.at(-1)!).toBeLessThan(FPS * 9.2);
      }
      expect(Math.abs(seen[0]!.at(-1)! - seen[1]!.at(-1)!)).toBeLessThan(FPS / 2);
      expect(Math.abs(seen[0]!.at(-1)! - seen[2]!.at(-1)!)).toBeLessThan(FPS / 2);

      // a pauses: its picture holds, b and c play on (the replay still plays, still one)
      await a.viewer.pause();
      const pausedAtFrame = a.frames.at(-1)!.n;
      await sleep(300); // frames in flight
      const t1 = Date.now();
      await sleep(2200);
      expect(since(a.frames, t1)).toEqual([]);
      for (const v of [b, c]) expect(since(v.frames, t1).length).toBeGreaterThan(FPS * 1.8);
      expect(channel.replayShares.size).toBe(1);

      // a resumes where it paused, 2.5 s behind the others now: a replay of its own (b and c keep theirs; a viewer
      // already in the past may move beyond DVR_MAX_REPLAYS, as before)
      const bBefore = b.frames.length;
      const r = await a.viewer.resume();
      expect(r.moved).toBe(true);
      expect(channel.replayShares.size).toBe(2);
      expect(channel.replayShares.members).toBe(3);
      const t2 = Date.now();
      await sleep(2000);
      const aAfter = since(a.frames, t2);
      expect(aAfter.length).toBeGreaterThan(FPS);
      // it plays on from its paused frame (its replay starts at the keyframe at or before it: ≤ 1 s back)
      expect(aAfter[0]!).toBeGreaterThan(pausedAtFrame - FPS * 1.2);
      expect(aAfter[0]!).toBeLessThan(pausedAtFrame + FPS * 0.5);
      // now about 2.5 s behind b, which did not stop
      const lag = b.frames.at(-1)!.n - a.frames.at(-1)!.n;
      expect(lag).toBeGreaterThan(FPS * 1.5);
      expect(lag).toBeLessThan(FPS * 4);
      expect(b.frames.length - bBefore).toBeGreaterThan(FPS * 1.5);

      // leaving closes: the last viewer off a replay closes it
      a.close();
      await waitUntil(() => channel.replayShares.size === 1, 3000, "a's replay closed");
      await b.viewer.live();
      await c.viewer.live();
      await waitUntil(() => channel.replayShares.size === 0, 3000, 'the shared replay closed');
    } finally {
      for (const v of viewers) v.close();
      await pub.stop();
    }
  });
});
