/**
 * DVR: how long a seek takes to show a picture. Socket viewer bots (the
 * protocol the web player speaks) join live, seek back by each offset, then
 * return to live; each step waits for the first decodable keyframe whose
 * capture stamp is from the right time. The live join of the same bots is the
 * baseline the seeks are compared with.
 */
import { nowUs, ObsPublisher, SocketClient, SocketViewer, type ReceivedFrame } from '@whipcast/testkit';
import { percentile } from './stats.ts';

export interface DvrBenchOptions {
  viewers: number;
  /** Seek targets behind live, ms (each needs that much recorded stream). */
  offsetsMs: number[];
  /** The publisher's keyframe interval, s: a seek lands on the keyframe at or before its target. */
  keyframeInterval: number;
  video: { kbps: number; width: number; height: number };
  progress(text: string): void;
}

export interface DvrResult {
  viewers: number;
  /** Live join → first decodable frame (instant start from the cached GOP). */
  liveTtffMs: { p50: number; p95: number };
  seeks: { offsetMs: number; toFirstFrameMs: { p50: number; p95: number }; landedBehindTargetMs: { p50: number; max: number } }[];
  /** `dvr.live` → first frame captured less than 1.5 s ago. */
  backToLiveMs: { p50: number; p95: number };
  failures: number;
}

/** Resolves with the time (ms) until a decodable frame passes `accept`, or null after `timeoutMs`. */
function firstFrame(viewer: SocketViewer, accept: (f: ReceivedFrame) => boolean, timeoutMs = 10_000): Promise<ReceivedFrame | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(null);
    }, timeoutMs);
    const off = viewer.receiver.onFrame((f) => {
      if (!f.decodable || !accept(f)) return;
      clearTimeout(timer);
      off();
      resolve(f);
    });
  });
}

/** Publishes to the channel long enough to seek to every offset, then runs the seeking bots. */
export async function runDvrBench(url: string, streamId: string, key: string, o: DvrBenchOptions): Promise<DvrResult> {
  const warmupMs = Math.max(...o.offsetsMs) + 2000;
  const pub = await ObsPublisher.publish({
    url: `${url}/whip`,
    token: key,
    video: { ...o.video, keyframeInterval: o.keyframeInterval, seconds: Math.max(4, o.keyframeInterval * 2), profile: 'baseline' },
  });
  try {
    await pub.connected();
    for (let t = 0; t < warmupMs; t += 500) {
      o.progress(`dvr: recording ${Math.round(t / 1000)}/${Math.round(warmupMs / 1000)} s before seeking`);
      await new Promise((r) => setTimeout(r, 500));
    }
    return await seekers(url, streamId, o);
  } finally {
    pub.drop();
  }
}

async function seekers(url: string, streamId: string, o: DvrBenchOptions): Promise<DvrResult> {
  const live: number[] = [];
  const back: number[] = [];
  const seeks = o.offsetsMs.map((offsetMs) => ({ offsetMs, times: [] as number[], landed: [] as number[] }));
  let failures = 0;
  const gopMs = o.keyframeInterval * 1000;

  const one = async (i: number): Promise<void> => {
    const socket = await SocketClient.connect(url);
    const viewer = new SocketViewer(socket, streamId);
    try {
      let t0 = performance.now();
      const joined = firstFrame(viewer, () => true);
      await viewer.start();
      if (!(await joined)) throw new Error('no first frame');
      live.push(performance.now() - t0);
      for (const s of seeks) {
        o.progress(`dvr: viewer ${i + 1}/${o.viewers} seeks ${s.offsetMs / 1000} s back`);
        const targetUs = nowUs() - s.offsetMs * 1000;
        t0 = performance.now();
        const landed = firstFrame(viewer, (f) => f.keyframe && !!f.stamp && f.stamp.captureUs <= targetUs + 500_000);
        await viewer.seek({ offsetMs: s.offsetMs });
        const f = await landed;
        if (!f) throw new Error(`no frame after seeking ${s.offsetMs} ms`);
        s.times.push(performance.now() - t0);
        s.landed.push((targetUs - f.stamp!.captureUs) / 1000);
        if (s.landed.at(-1)! > gopMs + 1000) throw new Error(`landed ${s.landed.at(-1)} ms before the target`);
      }
      t0 = performance.now();
      const atLive = firstFrame(viewer, (f) => !!f.stamp && nowUs() - f.stamp.captureUs < 1_500_000);
      await viewer.live();
      if (!(await atLive)) throw new Error('did not return to live');
      back.push(performance.now() - t0);
    } catch (err) {
      failures++;
      o.progress(`dvr: viewer ${i + 1} failed: ${(err as Error).message}`);
    } finally {
      viewer.close();
      socket.close();
    }
  };
  // a few at a time: the point is the seek path, not join load
  for (let i = 0; i < o.viewers; i += 3) await Promise.all([i, i + 1, i + 2].filter((k) => k < o.viewers).map(one));

  return {
    viewers: o.viewers,
    liveTtffMs: { p50: percentile(live, 50), p95: percentile(live, 95) },
    seeks: seeks.map((s) => ({
      offsetMs: s.offsetMs,
      toFirstFrameMs: { p50: percentile(s.times, 50), p95: percentile(s.times, 95) },
      landedBehindTargetMs: { p50: percentile(s.landed, 50), max: Math.max(...s.landed) },
    })),
    backToLiveMs: { p50: percentile(back, 50), p95: percentile(back, 95) },
    failures,
  };
}
