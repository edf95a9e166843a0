/**
 * The SFU benchmark: one OBS-like publisher (real H.264 + Opus stamped with
 * capture times), N viewer bots per step, against whipcast and against the
 * bare-mediasoup baseline. Sampled bots (libdatachannel) parse RTP and read
 * the stamps: latency is measured, not guessed; the others only count, in one
 * native process (testkit NativeBots) or as libdatachannel peers.
 */
import { packetPictureSize } from '@whipcast/sfu';
import {
  FREEZE_MS,
  ImpairedPeer,
  NativeBots,
  ObsPublisher,
  SocketClient,
  SocketViewer,
  WhepViewer,
  type ReceivedCounts,
} from '@whipcast/testkit';
import { isImpaired, type ImpairedShare } from './impair.ts';
import { children, cpuShare, sample, type ProcSample } from './proc.ts';
import { percentile } from './stats.ts';

export interface SfuBenchOptions {
  steps: number[];
  /** Seconds measured per step, after the ramp and the settle. */
  seconds: number;
  /** Seconds between the step's last bot getting its first frame and the measurement (default 2). */
  settleSeconds?: number;
  /** Viewer joins per second. */
  rampPerSecond: number;
  kbps: number;
  width: number;
  height: number;
  keyframeInterval: number;
  /**
   * Simulcast layers the publisher sends, as OBS 32.1 does with "Simulcast Layers" n (sizes and bitrates in steps
   * of 1/n of `width`×`height` and `kbps`); the bots then send transport-wide congestion control feedback as a
   * browser does, so the server picks each bot's layer, and report the layer they get (default 1: one layer).
   */
  simulcast?: number;
  /** p95 glass-to-glass target, ms. */
  latencyTargetMs: number;
  /**
   * Every k-th bot reassembles frames and measures latency and time to first frame; the others
   * only count packets, bytes, sequence gaps and frame ends (default 10; 1 = every bot in full).
   */
  sampleEvery?: number;
  /**
   * What the counting (not sampled) bots are: `native`, receive-only peers in one C process that count RTP from its
   * header (testkit NativeBots, about a fifth of libdatachannel's CPU per viewer), or `datachannel`, libdatachannel
   * peers like the sampled ones (default native). Simulcast, impaired and time-shifted runs always use libdatachannel:
   * they need congestion control feedback, a relay's rewritten SDP, or a seek.
   */
  bots?: 'native' | 'datachannel';
  /** Cores the bots (this process and its native bots process) may use; their CPU is judged as a share of these (default 1). */
  botCores?: number;
  /** After the last step every viewer leaves; memory is sampled again this many seconds later (default 5; 0 = no drain). */
  drainSeconds?: number;
  /** A share of the bots (all: 1/1) watches through an impaired link, a UDP relay each; their figures are reported apart. */
  impaired?: ImpairedShare;
  /**
   * DVR: every bot of the steps seeks this far back (ms) once joined and watches the past at 1× (socket bots only).
   * Their capture stamps are that old: their latency is a frame's age less the age of the keyframe their seek landed on
   * (what the replay's schedule adds), and the ages themselves give `behindLiveMs`.
   */
  timeShiftMs?: number;
  /** Live bots (every one reassembling frames) that join before the first step and stay: the `live` group of each step. */
  residentLive?: number;
  /** The publisher runs this long before the first step (a time shift needs that much past), ms (default 1500). */
  warmupMs?: number;
  progress(text: string): void;
}

/** Above this share of their cores the bots, not the server, may be what limits a step. */
export const BOTS_SATURATED = 0.85;

export interface StepResult {
  viewers: number;
  joined: number;
  joinFailures: number;
  /** The first few join failures' reasons. */
  joinErrors: string[];
  /** CPU as a fraction of one core: the server's Node main process, its mediasoup workers, and the bots (this process and its native bots). */
  cpu: { main: number; workers: number; bench: number; /** Of `bench`: the native bots process. */ natives: number };
  /** The bots' CPU as a share of the cores they may use (1 = saturated). */
  botsCoreShare: number;
  /** Bots that reassembled frames: latency and TTFF come from these; loss, bitrate and freezes from every bot. */
  sampledBots: number;
  /** Bots in the native bots process (the others are libdatachannel peers). */
  nativeBots: number;
  rssMb: { main: number; workers: number };
  kbpsPerViewer: number;
  lossPct: number;
  latencyMs: { p50: number; p95: number; p99: number };
  ttffMs: { p50: number; p95: number };
  /** Gaps of more than 1 s between frames during the measured seconds: bots that had one, how many, and the share of viewer-time frozen. */
  freezes: { viewers: number; count: number; frozenPct: number };
  /** Bots of the step watching the past (`timeShiftMs`): latency is not measured on them (absent: none). */
  timeShifted?: number;
  /** How far behind live the time-shifted sampled bots' frames were (capture stamp to arrival), ms. */
  behindLiveMs?: { p50: number; min: number };
  /** Viewers per simulcast layer at the end of the measured seconds, by the height of the picture they got (`720p`; `none`: no keyframe yet). */
  layers?: Record<string, number>;
  /** With impaired bots: the same figures for the impaired and the unimpaired ones apart. */
  groups?: GroupResult[];
  publisherNacks: number;
  publisherPlis: number;
}

export interface GroupResult {
  /** `impaired (<spec>)` or `unimpaired`. */
  name: string;
  viewers: number;
  sampledBots: number;
  kbpsPerViewer: number;
  /** Sequence gaps at the bots (what neither retransmission nor the link recovered). */
  lossPct: number;
  /** Packets the impaired links themselves dropped (loss and full queue), % of what entered them toward the bots. */
  linkDropPct: number | null;
  latencyMs: { p50: number; p95: number };
  ttffMs: { p50: number };
  freezes: { viewers: number; count: number; frozenPct: number };
  /** Viewers per simulcast layer (with `simulcast`). */
  layers?: Record<string, number>;
}

export interface MemoryResult {
  /** RSS with the publisher live and no viewer, MB. */
  idleMb: { main: number; workers: number };
  /** Viewers at the last step, and RSS then. */
  peakViewers: number;
  peakMb: { main: number; workers: number };
  /** (peak − idle) / viewers, MB. */
  perViewerMb: { main: number; workers: number };
  /** Seconds waited after every viewer left (0: no drain). */
  drainSeconds: number;
  /** RSS after the drain, and what the viewers took and did not give back (drained − idle), MB. */
  drainedMb: { main: number; workers: number } | null;
  notReturnedMb: { main: number; workers: number } | null;
  /** Viewers the server still counted after the drain (its `whipcast_viewers` metric; null when it has none). */
  viewersLeft: number | null;
}

export interface SfuRun {
  steps: StepResult[];
  memory: MemoryResult;
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
  receiver: ReceivedCounts;
  /** Reassembles frames (a sampled bot). */
  full: boolean;
  /** A native bot (testkit NativeBots), not a libdatachannel peer. */
  native?: boolean;
  /** Watches the past (seeked back): its stamps are old, it gives no latency. */
  shifted: boolean;
  /** Frames it had counted when its seek was answered (its first frame from the past comes after). */
  framesAtSeek: number;
  /** How far behind live the server said the seek landed (its keyframe's age then), ms; 0 for a live bot. */
  seekBehindMs: number;
  /** The relays of an impaired bot. */
  link: ImpairedPeer | null;
  /** Leaves the way a player does (WHEP DELETE, socket close). */
  leave(): Promise<void>;
  close(): void;
}

/** What a bot needs to follow simulcast: congestion control feedback, and the picture size read off its SPS. */
const SIMULCAST_BOT = { congestionControl: true, pictureSize: (p: Uint8Array) => packetPictureSize('h264', p) } as const;

/** A counting bot in the native bots process: WHEP, or the socket protocol (its socket closes with it). */
async function joinNative(target: Target, bots: NativeBots): Promise<Bot> {
  const socket = target.via === 'socket' ? await SocketClient.connect(target.url) : null;
  const bot = await (socket ? bots.socket(socket, target.streamId) : bots.whep(`${target.url}/whep/${target.streamId}`)).catch(
    (err: unknown) => {
      socket?.close();
      throw err;
    },
  );
  const close = () => {
    bot.close();
    socket?.close();
  };
  await bot.connected(15_000).catch((err: unknown) => {
    close();
    throw err;
  });
  return {
    receiver: bot.receiver,
    full: false,
    native: true,
    shifted: false,
    framesAtSeek: 0,
    seekBehindMs: 0,
    link: null,
    close,
    leave: async () => {
      await bot.leave();
      socket?.close();
    },
  };
}

async function join(target: Target, full: boolean, link: ImpairedPeer | null, simulcast: boolean, timeShiftMs = 0): Promise<Bot> {
  const rewrite = link ? { rewrite: (sdp: string) => link.rewriteSdp(sdp) } : null;
  if (timeShiftMs && target.via !== 'socket') throw new Error('time-shifted bots join via the socket (WHEP has no seek)');
  if (target.via === 'socket') {
    const socket = await SocketClient.connect(target.url);
    const v = new SocketViewer(socket, target.streamId, {
      frames: full,
      ...(rewrite ? { rewriteOffer: rewrite.rewrite } : {}),
      ...(simulcast ? SIMULCAST_BOT : {}),
    });
    const close = () => {
      v.close();
      socket.close();
      void link?.close();
    };
    let framesAtSeek = 0;
    let seekBehindMs = 0;
    await (async () => {
      await v.start();
      if (!timeShiftMs) return;
      seekBehindMs = (await v.seek({ offsetMs: timeShiftMs })).behindLiveMs;
      framesAtSeek = v.receiver.video.frames;
    })().catch((err: unknown) => {
      close();
      throw err;
    });
    return { receiver: v.receiver, full, shifted: timeShiftMs > 0, framesAtSeek, seekBehindMs, link, close, leave: async () => close() };
  }
  const v = await WhepViewer.watch({
    url: `${target.url}/whep/${target.streamId}`,
    frames: full,
    ...(rewrite ? { rewriteAnswer: rewrite.rewrite } : {}),
    ...(simulcast ? SIMULCAST_BOT : {}),
  }).catch((err: unknown) => {
    void link?.close();
    throw err;
  });
  const close = () => {
    v.close();
    void link?.close();
  };
  await v.connected(15_000).catch((err: unknown) => {
    close();
    throw err;
  });
  return {
    receiver: v.receiver,
    full,
    shifted: false,
    framesAtSeek: 0,
    seekBehindMs: 0,
    link,
    close,
    leave: async () => {
      await v.stop().catch(() => {});
      close();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Snapshot = ReturnType<typeof snapshot>;

function snapshot(v: Bot) {
  const video = v.receiver.video;
  return {
    bytes: video.bytes + v.receiver.audio.bytes,
    packets: video.packets,
    lost: video.lost,
    lat: video.latenciesMs.length,
    freezes: video.freezes,
    frozenMs: video.frozenMs,
  };
}

async function linkCounters(v: Bot) {
  return (await v.link!.counters()).toPeer;
}

/** A group of bots' figures over the measured window [t0, t1] (performance.now() ms). */
function figures(bots: Bot[], before: Map<Bot, Snapshot>, ttffOf: Map<Bot, number>, w: { t0: number; t1: number }) {
  const latencies: number[] = [];
  const behind: number[] = [];
  const ttff: number[] = [];
  let bytes = 0;
  let packets = 0;
  let lost = 0;
  const freezes = { viewers: 0, count: 0, frozenMs: 0 };
  const span = w.t1 - w.t0;
  for (const v of bots) {
    const b = before.get(v);
    if (!b) continue;
    const video = v.receiver.video;
    bytes += video.bytes + v.receiver.audio.bytes - b.bytes;
    packets += video.packets - b.packets;
    lost += video.lost - b.lost;
    const stampAges = video.latenciesMs.slice(b.lat);
    if (v.shifted) {
      behind.push(...stampAges);
      // a replayed frame is due (seek's landing age) after its capture: what comes later than that is its latency
      latencies.push(...stampAges.map((ms) => ms - v.seekBehindMs));
    } else latencies.push(...stampAges);
    const t = ttffOf.get(v);
    if (t !== undefined) ttff.push(t);
    // freezes that ended in the window, and one still going at its end
    let count = video.freezes - b.freezes;
    let frozen = video.frozenMs - b.frozenMs;
    const since = w.t1 - (video.lastFrameAt ?? w.t0);
    if (since > FREEZE_MS) {
      count++;
      frozen += Math.min(since, span);
    }
    if (count > 0) freezes.viewers++;
    freezes.count += count;
    freezes.frozenMs += Math.min(frozen, span);
  }
  return {
    layers: layersOf(bots),
    kbpsPerViewer: (bytes * 8) / span / Math.max(1, bots.length),
    lossPct: packets + lost ? (100 * lost) / (packets + lost) : 0,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    ttffMs: { p50: percentile(ttff, 50), p95: percentile(ttff, 95) },
    behindLiveMs: behind.length ? { p50: percentile(behind, 50), min: Math.min(...behind) } : undefined,
    freezes: {
      viewers: freezes.viewers,
      count: freezes.count,
      frozenPct: bots.length ? (100 * freezes.frozenMs) / (bots.length * span) : 0,
    },
  };
}

/** Bots per layer they receive now, by picture height (`720p`), the highest first; `none` before their first keyframe. */
function layersOf(bots: Bot[]): Record<string, number> {
  const heights = new Map<number, number>();
  for (const v of bots) {
    const h = v.receiver.video.size?.height ?? 0;
    heights.set(h, (heights.get(h) ?? 0) + 1);
  }
  return Object.fromEntries([...heights].sort((a, b) => b[0] - a[0]).map(([h, n]) => [h ? `${h}p` : 'none', n]));
}

/** The server's own viewer count (Prometheus `whipcast_viewers`), or null (the baseline has none). */
export async function viewersOnServer(url: string): Promise<number | null> {
  try {
    const token = process.env.METRICS_TOKEN; // the server the bench starts inherits it
    const res = await fetch(`${url}/metrics`, {
      signal: AbortSignal.timeout(3000),
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (!res.ok) return null;
    const m = /^whipcast_viewers (\d+)/m.exec(await res.text());
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** RSS of the server's main processes and workers, MB. */
function rss(target: Target): { main: number; workers: number } {
  const sum = (xs: (ProcSample | null)[]) => xs.reduce((a, x) => a + (x?.rssBytes ?? 0), 0) / 2 ** 20;
  return { main: sum(target.mainPids.map(sample)), workers: sum(target.workerPids().map(sample)) };
}

export async function runSfuBench(target: Target, opts: SfuBenchOptions): Promise<SfuRun> {
  const sampleEvery = Math.max(1, Math.round(opts.sampleEvery ?? 10));
  const botCores = Math.max(1, opts.botCores ?? 1);
  const drainSeconds = opts.drainSeconds ?? 5;
  const layers = Math.max(1, Math.round(opts.simulcast ?? 1));
  const natives =
    (opts.bots ?? 'native') === 'native' && layers === 1 && !opts.impaired && !opts.timeShiftMs ? await NativeBots.start() : null;
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
    // as OBS does; mediasoup needs them to move a viewer between layers (a single-layer run stays as it was)
    ...(layers > 1 ? { simulcast: { layers }, senderReports: true } : {}),
  });
  await publisher.connected();
  for (let t = 0; t < (opts.warmupMs ?? 1500); t += 500) {
    opts.progress(`${target.name}: publishing ${Math.round(t / 1000)} s before the first step`);
    await sleep(500);
  }
  const idleMb = rss(target);
  const viewers: Bot[] = [];
  /** Live bots that stay through every step (`residentLive`), measured apart from the steps' bots. */
  const residents: Bot[] = [];
  for (let j = 0; j < (opts.residentLive ?? 0); j++) {
    opts.progress(`${target.name}: live viewer ${j + 1}/${opts.residentLive} joins`);
    const bot = await join(target, true, null, layers > 1);
    residents.push(bot);
    await sleep(1000 / opts.rampPerSecond);
  }
  const results: StepResult[] = [];
  let joinedEver = 0;
  /** Join → first decodable frame, ms, of the sampled bots that joined in the current step. */
  const ttffOf = new Map<Bot, number>();
  let memory: MemoryResult | null = null;
  try {
    for (const n of opts.steps) {
      ttffOf.clear();
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
        // the first bot is always sampled, then every k-th
        const full = joinedEver % sampleEvery === 0;
        const impaired = opts.impaired && isImpaired(opts.impaired, joinedEver);
        joinedEver++;
        const impairment = impaired ? opts.impaired!.impairment : null;
        const after = impairment?.afterSeconds;
        const link = impairment
          ? new ImpairedPeer(after === undefined ? { toPeer: impairment.toPeer, toServer: impairment.toServer } : {})
          : null;
        joins.push(
          (natives && !full && !link ? joinNative(target, natives) : join(target, full, link, layers > 1, opts.timeShiftMs))
            .then(async (v) => {
              if (link && impairment && after !== undefined) {
                const turnBad = () =>
                  Promise.all([link.setImpairment('toPeer', impairment.toPeer), link.setImpairment('toServer', impairment.toServer)]);
                if (after > 0) setTimeout(() => void turnBad(), after * 1000).unref();
                else await turnBad();
              }
              viewers.push(v);
              const video = v.receiver.video;
              const deadline = Date.now() + 15_000;
              // a time-shifted bot: a frame of the past, after its seek was answered
              const arrived = () =>
                v.shifted ? video.frames > v.framesAtSeek : full ? video.timeToFirstFrameMs !== null : video.frames > 0;
              while (!arrived() && Date.now() < deadline) await sleep(20);
              if (!arrived()) fail(full ? 'no decodable frame within 15 s' : 'no video within 15 s');
              else if (full) ttffOf.set(v, performance.now() - started);
            })
            .catch((err: unknown) => fail(err instanceof Error ? err.message : String(err))),
        );
        opts.progress(`${target.name}: ${n} viewers — joining ${n - toJoin + j + 1}/${n}`);
        await sleep(1000 / opts.rampPerSecond);
      }
      await Promise.all(joins);
      opts.progress(`${target.name}: ${n} viewers — settling`);
      await sleep((opts.settleSeconds ?? 2) * 1000);

      await natives?.refresh();
      const before = new Map([...viewers, ...residents].map((v) => [v, snapshot(v)] as const));
      const links0 = new Map(await Promise.all(viewers.filter((v) => v.link).map(async (v) => [v, await linkCounters(v)] as const)));
      const pub0 = { ...publisher.counters };
      const workers = target.workerPids();
      const s0 = {
        main: target.mainPids.map(sample),
        workers: workers.map(sample),
        bench: process.cpuUsage(),
        natives: natives?.pid ? sample(natives.pid) : null,
        t: performance.now(),
      };
      for (let i = 0; i < opts.seconds; i++) {
        opts.progress(`${target.name}: ${n} viewers — measuring ${i + 1}/${opts.seconds} s`);
        await sleep(1000);
      }
      const t1 = performance.now();
      const secs = (t1 - s0.t) / 1000;
      const s1 = {
        main: target.mainPids.map(sample),
        workers: workers.map(sample),
        bench: process.cpuUsage(s0.bench),
        natives: natives?.pid ? sample(natives.pid) : null,
      };
      await natives?.refresh();
      const links1 = new Map(await Promise.all([...links0.keys()].map(async (v) => [v, await linkCounters(v)] as const)));
      const all = figures(viewers, before, ttffOf, { t0: s0.t, t1 });
      const sumCpu = (xs: (ProcSample | null)[], ys: (ProcSample | null)[]) =>
        xs.reduce((acc, x, i) => acc + cpuShare(x, ys[i] ?? null, secs), 0);
      const bench = (s1.bench.user + s1.bench.system) / 1e6 / secs + cpuShare(s0.natives, s1.natives, secs);
      results.push({
        viewers: n,
        joined: viewers.length,
        joinFailures: failures,
        joinErrors: errors,
        cpu: {
          main: sumCpu(s0.main, s1.main),
          workers: sumCpu(s0.workers, s1.workers),
          bench,
          natives: cpuShare(s0.natives, s1.natives, secs),
        },
        botsCoreShare: bench / botCores,
        sampledBots: viewers.filter((v) => v.full).length,
        nativeBots: viewers.filter((v) => v.native).length,
        rssMb: rss(target),
        kbpsPerViewer: all.kbpsPerViewer,
        lossPct: all.lossPct,
        latencyMs: all.latencyMs,
        ttffMs: all.ttffMs,
        freezes: all.freezes,
        ...(layers > 1 ? { layers: all.layers } : {}),
        ...(opts.timeShiftMs ? { timeShifted: viewers.filter((v) => v.shifted).length } : {}),
        ...(all.behindLiveMs ? { behindLiveMs: all.behindLiveMs } : {}),
        ...(residents.length
          ? {
              groups: [
                { name: 'live', bots: residents },
                { name: opts.timeShiftMs ? `dvr −${opts.timeShiftMs / 1000} s` : 'steps', bots: viewers },
              ].map(({ name, bots }): GroupResult => {
                const g = figures(bots, before, ttffOf, { t0: s0.t, t1 });
                return {
                  name,
                  viewers: bots.length,
                  sampledBots: bots.filter((v) => v.full).length,
                  kbpsPerViewer: g.kbpsPerViewer,
                  lossPct: g.lossPct,
                  linkDropPct: null,
                  latencyMs: { p50: g.latencyMs.p50, p95: g.latencyMs.p95 },
                  ttffMs: { p50: g.ttffMs.p50 },
                  freezes: g.freezes,
                };
              }),
            }
          : {}),
        ...(opts.impaired
          ? {
              groups: [true, false]
                .map((impaired): GroupResult => {
                  const bots = viewers.filter((v) => (v.link !== null) === impaired);
                  const g = figures(bots, before, ttffOf, { t0: s0.t, t1 });
                  let entered = 0;
                  let dropped = 0;
                  for (const v of bots) {
                    const c0 = links0.get(v);
                    const c1 = links1.get(v);
                    if (!c0 || !c1) continue;
                    entered += c1.packets - c0.packets;
                    dropped += c1.lost + c1.queueDropped - c0.lost - c0.queueDropped;
                  }
                  return {
                    name: impaired ? `impaired (${opts.impaired!.impairment.spec})` : 'unimpaired',
                    viewers: bots.length,
                    sampledBots: bots.filter((v) => v.full).length,
                    kbpsPerViewer: g.kbpsPerViewer,
                    lossPct: g.lossPct,
                    linkDropPct: impaired && entered ? (100 * dropped) / entered : null,
                    latencyMs: { p50: g.latencyMs.p50, p95: g.latencyMs.p95 },
                    ttffMs: { p50: g.ttffMs.p50 },
                    freezes: g.freezes,
                    ...(layers > 1 ? { layers: g.layers } : {}),
                  };
                })
                .filter((g) => g.viewers > 0),
            }
          : {}),
        publisherNacks: publisher.counters.nacksReceived - pub0.nacksReceived,
        publisherPlis: publisher.counters.plisReceived - pub0.plisReceived,
      });
    }
    const last = results.at(-1);
    const peakViewers = last?.joined ?? 0;
    const peakMb = last?.rssMb ?? idleMb;
    const per = (k: 'main' | 'workers') => (peakViewers ? (peakMb[k] - idleMb[k]) / peakViewers : 0);
    memory = {
      idleMb,
      peakViewers,
      peakMb,
      perViewerMb: { main: per('main'), workers: per('workers') },
      drainSeconds,
      drainedMb: null,
      notReturnedMb: null,
      viewersLeft: null,
    };
    if (drainSeconds > 0 && viewers.length + residents.length) {
      opts.progress(`${target.name}: every viewer leaves — draining ${drainSeconds} s`);
      await Promise.all([...viewers.splice(0), ...residents.splice(0)].map((v) => v.leave()));
      await sleep(drainSeconds * 1000);
      const drained = rss(target);
      memory.drainedMb = drained;
      memory.notReturnedMb = { main: drained.main - idleMb.main, workers: drained.workers - idleMb.workers };
      memory.viewersLeft = await viewersOnServer(target.url);
    }
  } finally {
    for (const v of [...viewers, ...residents]) v.close();
    natives?.close();
    publisher.drop();
  }
  return { steps: results, memory };
}

export interface Capacity {
  /** Largest step, in order, with < 1 % loss, p95 under the target and no failed join, before the first that failed. */
  viewers: number;
  /** The first step up to that point at which the bots used more than BOTS_SATURATED of their cores: then no capacity is called. */
  botsSaturatedAt: number | null;
  /** The bots' share of their cores at that step. */
  botsCoreShare: number | null;
  /** A step failed: `viewers` is the knee, not only a lower bound. */
  kneeFound: boolean;
  largestStep: number;
  /** The verdict as a sentence: a figure, a lower bound, or the refusal. */
  text: string;
}

/**
 * Reads the steps in order up to the first that fails. If the bots were saturated at any of those
 * steps, the figure is refused (`botsSaturatedAt`): the instrument, not the server, may have set the
 * knee, and `viewers` is only a lower bound.
 */
export function capacity(results: StepResult[], latencyTargetMs: number): Capacity {
  const out: Capacity = { viewers: 0, botsSaturatedAt: null, botsCoreShare: null, kneeFound: false, largestStep: 0, text: '' };
  const steps = [...results].sort((a, b) => a.viewers - b.viewers);
  out.largestStep = steps.at(-1)?.viewers ?? 0;
  for (const r of steps) {
    if (out.botsSaturatedAt === null && r.botsCoreShare > BOTS_SATURATED) {
      out.botsSaturatedAt = r.viewers;
      out.botsCoreShare = r.botsCoreShare;
    }
    if (r.lossPct < 1 && r.latencyMs.p95 < latencyTargetMs && r.joinFailures === 0) out.viewers = r.viewers;
    else {
      out.kneeFound = true;
      break;
    }
  }
  out.text = capacityText(out);
  return out;
}

/** The capacity as a sentence: a figure, a lower bound, or a refusal. */
function capacityText(c: Capacity): string {
  if (c.botsSaturatedAt !== null)
    return `capacity not measurable: bots saturated at ${c.botsSaturatedAt} (${Math.round((c.botsCoreShare ?? 0) * 100)}% of their cores); largest step held: ${c.viewers}`;
  if (c.kneeFound) return `${c.viewers}`;
  return `≥ ${c.viewers} (no knee up to the largest step tried)`;
}

export { children };
