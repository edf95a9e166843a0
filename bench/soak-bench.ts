/**
 * The soak benchmark: many channels, many viewers, a long time, on one node
 * and across two nodes of a cluster. Every viewer bot's RTP arrivals (kind,
 * sequence number, time) feed a SoakChecker: a viewer fails on a gap of more
 * than `maxGapMs` without an audio or a video frame, or on RTP loss above
 * `maxLossFraction`, and is named. The bots run in child processes
 * (`botsPerProcess` each), so the bots' own stalls are visible as such.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startThrowawayCluster } from '@whipcast/db/test-postgres';
import { children, cpuShare, sample } from './proc.ts';
import { ServerProbe, type ProbeSummary } from './server-probe.ts';
import { prepareChannel, startServer, stopRecording, type BenchServer } from './server.ts';
import { SoakBots } from './soak-bots-process.ts';
import type { SoakVerdict } from './soak-check.ts';
import type { SoakPublisherSpec, SoakViewerSpec } from './soak-protocol.ts';
import { f } from './table.ts';
import { sampleUdpDrops, udpDropsByOwner } from './udp-drops.ts';

/** Options of one soak part (one node or two). */
export interface SoakPartOptions {
  /** Nodes: 1, or 2 (one Postgres; channels are published on each node in turn, watched on both). */
  nodes: 1 | 2;
  channels: number;
  /** Viewers of each channel on each node. */
  viewersPerChannel: number;
  /** Measured seconds, after every viewer joined and a 2 s settle. */
  seconds: number;
  kbps: number;
  width: number;
  height: number;
  /** Publisher keyframe interval, s. */
  keyframeInterval: number;
  /** How the viewer bots join: WHEP, or the socket protocol the web player speaks. */
  via: 'whep' | 'socket';
  /** Channels record their sessions ("Save past broadcasts", on by default; default true). */
  recording?: boolean;
  /** Viewer bots per bots process (default 25). */
  botsPerProcess?: number;
  /** Longest allowed time without a frame per viewer and kind, ms (default 1000). */
  maxGapMs?: number;
  /** Allowed RTP loss per viewer and kind, fraction (default 0.01). */
  maxLossFraction?: number;
  /** Faults to catch: pause these viewers' consumers on the server for a while (socket viewers, by name). */
  stalls?: Record<string, { afterMs: number; forMs: number }>;
  /** An empty Postgres for the two nodes (default: a throwaway cluster, needs Debian's postgresql). */
  databaseUrl?: string | undefined;
  /** Cores the bots may use; their CPU is judged as a share of these (default 1). */
  botCores?: number;
  /** Called with the servers' pids once they run (CPU pinning). */
  onServers?(pids: number[]): void;
  progress(text: string): void;
}

/** Per media kind. */
export interface PerKind<T> {
  audio: T;
  video: T;
}

/** What one soak part found. */
export interface SoakPartResult {
  name: string;
  nodes: number;
  /** The channels recorded their sessions. */
  recording: boolean;
  channels: number;
  /** Viewer bots asked for, and those that joined (a failed join is a failure of the run). */
  viewers: number;
  joined: number;
  seconds: number;
  ok: boolean;
  /** One line per failing viewer (named `c<channel>-v<viewer>@<node>`), joins that failed, bot stalls. */
  failures: string[];
  /** The longest gap without a frame over every viewer, ms. */
  worstGapMs: PerKind<number>;
  /** RTP packets lost over every viewer, % of expected. */
  lossPct: PerKind<number>;
  /** Frames received per viewer per second (mean): ~30 video, ~50 audio. */
  framesPerSecond: PerKind<number>;
  /** CPU as a fraction of one core: the servers' Node main processes, their mediasoup workers, the bots processes. */
  cpu: { main: number; workers: number; bots: number };
  /** The bots' CPU as a share of the cores they may use (1 = saturated). */
  botsCoreShare: number;
  botProcesses: number;
  /** The longest any bots process's event loop ran late, ms: a gap up to this long may be the bots', not the server's. */
  botsEventLoopMaxMs: number;
  rssMb: { main: number; workers: number };
  /** UDP datagrams the kernel dropped for a full socket receive buffer during the window (all of this machine's sockets: /proc/net/snmp RcvbufErrors). */
  udpRcvbufErrors: number;
  /** The same drops by whose socket it was (/proc/net/udp): the servers' (workers'), the publisher bots', the viewer bots', others'. */
  udpDrops: { server: number; publishers: number; viewers: number; other: number };
  /** Video frames each publisher sent per second in the window (mean over publishers): what the viewers could get at most. */
  sentFramesPerSecond: number;
  /** The servers' Node main threads, from their /metrics every 2 s: event-loop delay and garbage collection (all nodes). */
  server: {
    /** The longest event-loop delay, ms. */
    lagMaxMs: number;
    /** Delays over 200 ms: node, when (s into the window, to the 2 s scrape), how long. */
    stalls: { node: string; atSeconds: number; ms: number }[];
    gcMajor: { count: number; seconds: number };
    /** Time in GC of every kind, s. */
    gcSeconds: number;
  };
  /** Viewers whose longest gap was over the limit, grouped by the second it ended in (a gap many viewers share is upstream of them). */
  gapMoments: { atSeconds: number; viewers: number }[];
}

/** The kernel's count of UDP datagrams dropped for a full receive buffer (this network namespace). */
function udpRcvbufErrors(): number {
  try {
    const [names, values] = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp:'))
      .map((l) => l.split(/\s+/));
    return Number(values?.[names?.indexOf('RcvbufErrors') ?? -1] ?? NaN);
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const NODE_NAMES = ['A', 'B'];

/** Runs one soak part: starts its node(s), publishers and viewer bots, measures, and stops everything. */
export async function runSoakPart(opts: SoakPartOptions): Promise<SoakPartResult> {
  const name = opts.nodes === 1 ? 'one node' : 'two nodes';
  const maxGapMs = opts.maxGapMs ?? 1000;
  const maxLossFraction = opts.maxLossFraction ?? 0.01;
  const perProcess = opts.botsPerProcess ?? 25;
  const cluster = opts.nodes === 2 && !opts.databaseUrl ? await startThrowawayCluster() : null;
  const servers: BenchServer[] = [];
  const bots: SoakBots[] = [];
  const probes: ServerProbe[] = [];
  try {
    opts.progress(`soak ${name}: starting`);
    const env: Record<string, string> =
      opts.nodes === 2
        ? {
            DATABASE_URL: opts.databaseUrl ?? cluster!.url,
            WHIPCAST_SECRET: randomBytes(32).toString('base64url'),
            NODE_URL: 'self',
          }
        : {};
    for (let n = 0; n < opts.nodes; n++)
      servers.push(await startServer({ ...env, ...(opts.nodes === 2 ? { NODE_ID: `soak-${NODE_NAMES[n]}` } : {}) }));
    const mainPids = servers.flatMap((s) => (s.pid ? [s.pid] : []));
    const workerPids = () => mainPids.flatMap((p) => children(p, /mediasoup/));
    opts.onServers?.([...mainPids, ...workerPids()]);

    const video = { kbps: opts.kbps, width: opts.width, height: opts.height, keyframeInterval: opts.keyframeInterval };
    const publishers: SoakPublisherSpec[] = [];
    const viewers: SoakViewerSpec[] = [];
    for (let c = 0; c < opts.channels; c++) {
      const home = servers[c % servers.length]!;
      const ch = await prepareChannel(home.url);
      if (opts.recording === false) await stopRecording(home.url, ch);
      publishers.push({ url: home.url, key: ch.key, video });
      for (let n = 0; n < servers.length; n++)
        for (let v = 0; v < opts.viewersPerChannel; v++) {
          const viewer = `c${c}-v${v}@${opts.nodes === 2 ? NODE_NAMES[n] : 'node'}`;
          const stall = opts.stalls?.[viewer];
          viewers.push({
            name: viewer,
            url: servers[n]!.url,
            channelId: ch.streamId,
            via: opts.via,
            ...(stall ? { stall } : {}),
          });
        }
    }
    for (const s of Object.keys(opts.stalls ?? {})) {
      if (opts.via !== 'socket') throw new Error('soak: stalls pause consumers over the socket protocol: use via socket');
      if (!viewers.some((v) => v.name === s)) throw new Error(`soak: no viewer ${s} to stall`);
    }

    // the publishers in a process of their own, then the viewers spread over processes, one channel's viewers spread too
    opts.progress(`soak ${name}: ${publishers.length} publishers`);
    bots.push(await SoakBots.start('publishers', { publishers, viewers: [], joinSpacingMs: 0 }));
    await sleep(1500); // the channels go live
    const groups: SoakViewerSpec[][] = Array.from({ length: Math.max(1, Math.ceil(viewers.length / perProcess)) }, () => []);
    viewers.forEach((v, i) => groups[i % groups.length]!.push(v));
    opts.progress(`soak ${name}: ${viewers.length} viewers in ${groups.length} bots processes`);
    const started = await Promise.allSettled(
      groups.map((g, i) => SoakBots.start(`viewers-${i}`, { publishers: [], viewers: g, joinSpacingMs: 100 * groups.length })),
    );
    for (const s of started) if (s.status === 'fulfilled') bots.push(s.value);
    const notStarted = started.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
    if (notStarted.length) throw new Error(`soak ${name}: bots did not start: ${notStarted.join('; ')}`);
    const joinErrors = bots.flatMap((b) => b.joinErrors);
    await sleep(2000);

    const botPids = bots.flatMap((b) => (b.pid ? [b.pid] : []));
    const before = { main: mainPids.map(sample), workers: workerPids().map(sample), bots: botPids.map(sample) };
    const workersAtStart = workerPids();
    const drops0 = udpRcvbufErrors();
    const sockets0 = sampleUdpDrops();
    probes.push(...servers.map((s) => new ServerProbe({ url: s.url })));
    for (const b of bots) b.measure(maxGapMs, maxLossFraction);
    const t0 = performance.now();
    while (performance.now() - t0 < opts.seconds * 1000) {
      await sleep(Math.min(5000, opts.seconds * 1000 - (performance.now() - t0)));
      opts.progress(`soak ${name}: ${Math.round((performance.now() - t0) / 1000)} / ${opts.seconds} s`);
    }
    const results = await Promise.all(bots.map((b) => b.finish()));
    const span = (performance.now() - t0) / 1000;
    const drops = udpRcvbufErrors() - drops0;
    const udpDrops = udpDropsByOwner(sockets0, sampleUdpDrops(), {
      server: [...mainPids, ...workerPids()],
      publishers: bots[0]?.pid ? [bots[0].pid] : [],
      viewers: bots.slice(1).flatMap((b) => (b.pid ? [b.pid] : [])),
    });
    const probed: ProbeSummary[] = await Promise.all(probes.map((p) => p.stop()));
    const after = { main: mainPids.map(sample), workers: workersAtStart.map(sample), bots: botPids.map(sample) };
    const cpu = (k: keyof typeof before) => before[k].reduce((a, s, i) => a + cpuShare(s, after[k][i]!, span), 0);
    const rss = (xs: ReturnType<typeof sample>[]) => xs.reduce((a, x) => a + (x?.rssBytes ?? 0), 0) / 2 ** 20;

    const verdicts: SoakVerdict[] = results.map((r) => r.verdict);
    const failures: string[] = joinErrors.map((e) => `join failed: ${e}`);
    results.forEach((r, i) => {
      const slow = r.eventLoopMaxMs > maxGapMs / 2;
      for (const f of r.verdict.failures)
        failures.push(slow ? `${f} (bots process ${bots[i]!.name}'s event loop ran up to ${Math.round(r.eventLoopMaxMs)} ms late)` : f);
    });
    const tracks = verdicts.flatMap((v) => v.tracks);
    const perKind = <T>(f: (kind: 'audio' | 'video') => T): PerKind<T> => ({ audio: f('audio'), video: f('video') });
    const ofKind = (kind: 'audio' | 'video') => tracks.filter((t) => t.kind === kind);
    const joined = tracks.length / 2;
    const botsCpu = cpu('bots');
    const sent = results.flatMap((r) => r.publisherFrames);
    const moments = new Map<number, Set<string>>();
    for (const t of tracks)
      if (t.maxGapMs > maxGapMs) {
        const at = Math.floor(t.maxGapEndMs / 1000);
        moments.set(at, (moments.get(at) ?? new Set()).add(t.viewer));
      }
    return {
      name,
      nodes: opts.nodes,
      recording: opts.recording !== false,
      channels: opts.channels,
      viewers: viewers.length,
      joined,
      seconds: span,
      ok: failures.length === 0 && joined === viewers.length,
      failures,
      worstGapMs: perKind((k) => Math.max(0, ...ofKind(k).map((t) => t.maxGapMs))),
      lossPct: perKind((k) => {
        const lost = ofKind(k).reduce((a, t) => a + t.lost, 0);
        const got = ofKind(k).reduce((a, t) => a + t.packets, 0);
        return lost + got ? (100 * lost) / (lost + got) : 0;
      }),
      framesPerSecond: perKind((k) => ofKind(k).reduce((a, t) => a + t.frames, 0) / Math.max(1, joined) / span),
      cpu: { main: cpu('main'), workers: cpu('workers'), bots: botsCpu },
      botsCoreShare: botsCpu / (opts.botCores ?? 1),
      botProcesses: bots.length,
      botsEventLoopMaxMs: Math.max(0, ...results.map((r) => r.eventLoopMaxMs)),
      rssMb: { main: rss(after.main), workers: rss(after.workers) },
      udpRcvbufErrors: drops,
      udpDrops,
      sentFramesPerSecond: sent.length ? sent.reduce((a, n) => a + n, 0) / sent.length / span : 0,
      server: {
        lagMaxMs: Math.max(0, ...probed.map((p) => p.lagMaxMs)),
        stalls: probed.flatMap((p, i) => p.stalls.map((st) => ({ node: servers.length > 1 ? NODE_NAMES[i]! : 'node', ...st }))),
        gcMajor: {
          count: probed.reduce((a, p) => a + p.gcMajor.count, 0),
          seconds: probed.reduce((a, p) => a + p.gcMajor.seconds, 0),
        },
        gcSeconds: probed.reduce((a, p) => a + p.gcSeconds, 0),
      },
      gapMoments: [...moments]
        .map(([atSeconds, v]) => ({ atSeconds, viewers: v.size }))
        .sort((a, b) => b.viewers - a.viewers || a.atSeconds - b.atSeconds),
    };
  } finally {
    for (const p of probes) p.close();
    await Promise.all(bots.map((b) => b.close()));
    for (const s of servers.reverse()) await s.stop();
    cluster?.stop();
  }
}

/** The soak parts as table lines, the failing viewers named (the first 20 of each part). */
export function soakTable(parts: SoakPartResult[], botsSaturated: number): string[] {
  if (!parts.length) return [];
  const rows = [
    [
      'soak',
      'channels',
      'rec',
      'viewers',
      'seconds',
      'verdict',
      'worst gap v/a ms',
      'loss v/a %',
      'frames/s v/a',
      'sent fps',
      'main CPU',
      'worker CPU',
      'bots CPU',
      'bots late ms',
      'server late ms',
      'UDP rcvbuf drops',
    ],
  ];
  for (const p of parts)
    rows.push([
      p.name,
      String(p.channels),
      p.recording ? 'on' : 'off',
      `${p.joined}/${p.viewers}`,
      f(p.seconds),
      p.ok ? 'every viewer continuous' : `${p.failures.length} FAILED`,
      `${f(p.worstGapMs.video)} / ${f(p.worstGapMs.audio)}`,
      `${f(p.lossPct.video, 2)} / ${f(p.lossPct.audio, 2)}`,
      `${f(p.framesPerSecond.video, 1)} / ${f(p.framesPerSecond.audio, 1)}`,
      f(p.sentFramesPerSecond, 1),
      `${f(p.cpu.main * 100)}%`,
      `${f(p.cpu.workers * 100)}%`,
      `${f(p.botsCoreShare * 100)}%${p.botsCoreShare > botsSaturated ? ' SAT' : ''}`,
      f(p.botsEventLoopMaxMs),
      f(p.server.lagMaxMs),
      f(p.udpRcvbufErrors),
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const details = parts.flatMap((p) => {
    const d = p.udpDrops;
    const lines = [
      `  ${p.name}: UDP drops by socket owner: server ${d.server}, publisher bots ${d.publishers}, viewer bots ${d.viewers}, other ${d.other}; ` +
        `server GC: ${p.server.gcMajor.count} major (${f(p.server.gcMajor.seconds, 2)} s), ${f(p.server.gcSeconds, 2)} s in all`,
    ];
    if (p.server.stalls.length)
      lines.push(
        `  ${p.name}: server event loop late over 200 ms: ${p.server.stalls
          .slice(0, 12)
          .map((x) => `${x.node} ${x.ms} ms by ${x.atSeconds} s`)
          .join(', ')}${p.server.stalls.length > 12 ? ` … ${p.server.stalls.length - 12} more` : ''}`,
      );
    if (p.gapMoments.length)
      lines.push(
        `  ${p.name}: viewers' longest gaps over the limit ended at (s into the window: viewers): ${p.gapMoments
          .slice(0, 8)
          .map((m) => `${m.atSeconds}: ${m.viewers}`)
          .join(', ')}`,
      );
    return lines;
  });
  const failures = parts.flatMap((p) =>
    p.failures
      .slice(0, 20)
      .map((x) => `  ${p.name}: ${x}`)
      .concat(p.failures.length > 20 ? [`  ${p.name}: … ${p.failures.length - 20} more`] : []),
  );
  return [
    '',
    ...lines,
    'soak: every viewer must get an audio and a video frame at least every second and lose under 1% of RTP packets;',
    '  viewers are named c<channel>-v<viewer>@<node>; "bots late" is how late the bots processes\' event loops ran (a gap that long may be the bots\');',
    '  "UDP rcvbuf drops": datagrams the kernel dropped for a full socket receive buffer in the window (server and bots alike; by owner below);',
    '  "sent fps": video frames a second each publisher bot sent; "server late ms": how late the servers\' Node main event loops ran (their /metrics).',
    ...details,
    ...failures,
  ];
}
