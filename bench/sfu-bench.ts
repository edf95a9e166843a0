/**
 * The SFU benchmark: one OBS-like publisher (real H.264 + Opus stamped with
 * capture times), N libdatachannel WHEP viewer bots per step, against
 * whipcast and against the bare-mediasoup baseline. Bots parse RTP and read
 * the stamps: latency is measured, not guessed.
 */
import { ObsPublisher, SocketClient, SocketViewer, WhepViewer, type MediaReceiver } from '@whipcast/testkit';
import { children, cpuShare, sample, type ProcSample } from './proc.ts';
import { percentile } from './stats.ts';

export interface SfuBenchOptions {
  steps: number[];
  /** Seconds measured per step, after the ramp and a 2 s settle. */
  seconds: number;
  /** Viewer joins per second. */
  rampPerSecond: number;
  kbps: number;
  width: number;
  height: number;
  keyframeInterval: number;
  /** p95 glass-to-glass target, ms. */
  latencyTargetMs: number;
  progress(text: string): void;
}

export interface StepResult {
  viewers: number;
  joined: number;
  joinFailures: number;
  /** The first few join failures' reasons. */
  joinErrors: string[];
  /** Server CPU as a fraction of one core: Node main process and mediasoup workers. */
  cpu: { main: number; workers: number; bench: number };
  rssMb: { main: number; workers: number };
  kbpsPerViewer: number;
  lossPct: number;
  latencyMs: { p50: number; p95: number; p99: number };
  ttffMs: { p50: number; p95: number };
  publisherNacks: number;
  publisherPlis: number;
}

export interface Target {
  name: string;
  /** Where the viewer bots join. */
  url: string;
  /** Where the publisher goes (default `url`): another node of a cluster for relayed viewers. */
  publishUrl?: string;
  streamId: string;
  key?: string;
  /** How bots join: WHEP, or the socket protocol the web player speaks (whipcast only). */
  via?: 'whep' | 'socket';
  /** Pids of the server's Node processes (none when it is this process); their CPU is summed as "main". */
  mainPids: number[];
  workerPids(): number[];
}

interface Bot {
  receiver: MediaReceiver;
  close(): void;
}

async function join(target: Target): Promise<Bot> {
  if (target.via === 'socket') {
    const socket = await SocketClient.connect(target.url);
    const v = new SocketViewer(socket, target.streamId);
    const close = () => {
      v.close();
      socket.close();
    };
    await v.start().catch((err: unknown) => {
      close();
      throw err;
    });
    return { receiver: v.receiver, close };
  }
  const v = await WhepViewer.watch({ url: `${target.url}/whep/${target.streamId}` });
  await v.connected(15_000).catch((err: unknown) => {
    v.close();
    throw err;
  });
  return v;
}

export async function runSfuBench(target: Target, opts: SfuBenchOptions): Promise<StepResult[]> {
  const publisher = await ObsPublisher.publish({
    url: `${target.publishUrl ?? target.url}/whip`,
    ...(target.key ? { token: target.key } : {}),
    video: {
      kbps: opts.kbps,
      width: opts.width,
      height: opts.height,
      keyframeInterval: opts.keyframeInterval,
      seconds: Math.max(4, opts.keyframeInterval * 2),
      profile: 'baseline',
    },
  });
  await publisher.connected();
  await new Promise((r) => setTimeout(r, 1500));
  const viewers: Bot[] = [];
  const results: StepResult[] = [];
  try {
    for (const n of opts.steps) {
      const ttff: number[] = [];
      let failures = 0;
      const errors: string[] = [];
      const fail = (why: string) => {
        failures++;
        if (errors.length < 3) errors.push(why);
      };
      const joins: Promise<void>[] = [];
      const toJoin = n - viewers.length;
      for (let j = 0; j < toJoin; j++) {
        const started = performance.now();
        joins.push(
          join(target)
            .then(async (v) => {
              viewers.push(v);
              const deadline = Date.now() + 15_000;
              while (v.receiver.video.timeToFirstFrameMs === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
              if (v.receiver.video.timeToFirstFrameMs !== null) ttff.push(performance.now() - started);
              else fail('no decodable frame within 15 s');
            })
            .catch((err: unknown) => fail(err instanceof Error ? err.message : String(err))),
        );
        opts.progress(`${target.name}: ${n} viewers — joining ${n - toJoin + j + 1}/${n}`);
        await new Promise((r) => setTimeout(r, 1000 / opts.rampPerSecond));
      }
      await Promise.all(joins);
      opts.progress(`${target.name}: ${n} viewers — settling`);
      await new Promise((r) => setTimeout(r, 2000));

      const before = viewers.map((v) => ({
        bytes: v.receiver.video.bytes + v.receiver.audio.bytes,
        packets: v.receiver.video.packets,
        lost: v.receiver.video.lost,
        lat: v.receiver.video.latenciesMs.length,
      }));
      const pub0 = { ...publisher.counters };
      const workers = target.workerPids();
      const s0 = {
        main: target.mainPids.map(sample),
        workers: workers.map(sample),
        bench: process.cpuUsage(),
        t: performance.now(),
      };
      for (let i = 0; i < opts.seconds; i++) {
        opts.progress(`${target.name}: ${n} viewers — measuring ${i + 1}/${opts.seconds} s`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const secs = (performance.now() - s0.t) / 1000;
      const s1 = { main: target.mainPids.map(sample), workers: workers.map(sample), bench: process.cpuUsage(s0.bench) };
      const latencies: number[] = [];
      let bytes = 0;
      let packets = 0;
      let lost = 0;
      viewers.forEach((v, i) => {
        const b = before[i]!;
        bytes += v.receiver.video.bytes + v.receiver.audio.bytes - b.bytes;
        packets += v.receiver.video.packets - b.packets;
        lost += v.receiver.video.lost - b.lost;
        latencies.push(...v.receiver.video.latenciesMs.slice(b.lat));
      });
      const sumCpu = (xs: (ProcSample | null)[], ys: (ProcSample | null)[]) =>
        xs.reduce((acc, x, i) => acc + cpuShare(x, ys[i] ?? null, secs), 0);
      const sumRss = (xs: (ProcSample | null)[]) => xs.reduce((a, x) => a + (x?.rssBytes ?? 0), 0) / 2 ** 20;
      results.push({
        viewers: n,
        joined: viewers.length,
        joinFailures: failures,
        joinErrors: errors,
        cpu: {
          main: sumCpu(s0.main, s1.main),
          workers: sumCpu(s0.workers, s1.workers),
          bench: (s1.bench.user + s1.bench.system) / 1e6 / secs,
        },
        rssMb: { main: sumRss(s1.main), workers: sumRss(s1.workers) },
        kbpsPerViewer: (bytes * 8) / 1000 / secs / Math.max(1, viewers.length),
        lossPct: packets + lost ? (100 * lost) / (packets + lost) : 0,
        latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
        ttffMs: { p50: percentile(ttff, 50), p95: percentile(ttff, 95) },
        publisherNacks: publisher.counters.nacksReceived - pub0.nacksReceived,
        publisherPlis: publisher.counters.plisReceived - pub0.plisReceived,
      });
    }
  } finally {
    for (const v of viewers) v.close();
    publisher.drop();
  }
  return results;
}

/** Largest step that kept loss under 1% and p95 latency under the target. */
export function capacity(results: StepResult[], latencyTargetMs: number): number {
  let best = 0;
  for (const r of results) if (r.lossPct < 1 && r.latencyMs.p95 < latencyTargetMs && r.joinFailures === 0) best = Math.max(best, r.viewers);
  return best;
}

export { children };
