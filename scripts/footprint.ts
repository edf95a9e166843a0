/**
 * Memory footprint of the README start command (`node dist/server.js`, the bundled server that
 * `npm start` and scripts/start.sh run, built first if its sources changed; default settings, a fresh
 * DATA_DIR): starts it, waits for /readyz, lets it idle, then sums RSS and PSS over its whole process
 * tree (Node, mediasoup workers, the embedded database's processes).
 *
 *   node --import tsx scripts/footprint.ts [--idle-seconds 10] [--samples 5] [--settle] [--tsx] [--viewers N] [-- KEY=VALUE ...]
 *
 * `--settle`: idle only until the pool's connections are gone (at most
 * `--idle-seconds`; with e.g. `-- DATABASE_IDLE_SECONDS=2` that is a few seconds).
 * `--tsx`: run the sources through tsx instead (`npm run dev`'s way, the start command before dist/).
 * `--viewers N`: loaded: one live channel (720p 2.5 Mbit/s, keyframe 2 s) and N socket viewers, joined
 * at ready; the idle wait and the samples follow (the DVR's share of the total is estimated apart).
 *
 * Prints JSON. Linux only (reads /proc). PSS counts pages shared between processes once, so it is
 * the fairer total; RSS is what the issue's figures and most tools show.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@whipcast/db/test-postgres';
import { buildServer, SERVER_JS, SERVER_NODE_FLAGS } from './build-server.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ProcessMemory {
  pid: number;
  name: string;
  rssKb: number;
  pssKb: number;
}

export interface TreeMemory {
  rssMb: number;
  pssMb: number;
  processes: ProcessMemory[];
}

const kb = (text: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);

function parentOf(pid: string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** RSS and PSS of `root` and all its descendants. */
export function treeMemory(root: number): TreeMemory {
  const parents = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      parents.set(Number(d), parentOf(d));
    } catch {
      // exited meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p && hops < 64; p = parents.get(p), hops++) if (p === root) return true;
    return false;
  };
  const processes: ProcessMemory[] = [];
  for (const pid of parents.keys()) {
    if (!inTree(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      let pssKb = 0;
      try {
        pssKb = kb(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
      } catch {
        // smaps_rollup needs the same user or root
      }
      const name = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 80);
      processes.push({ pid, name, rssKb: kb(status, 'VmRSS'), pssKb });
    } catch {
      // exited meanwhile
    }
  }
  const sum = (f: (p: ProcessMemory) => number) => Math.round((processes.reduce((a, p) => a + f(p), 0) / 1024) * 10) / 10;
  return { rssMb: sum((p) => p.rssKb), pssMb: sum((p) => p.pssKb), processes };
}

/** A process an idle server does not keep: a database connection's backend (the pool closes unused ones). */
export const passing = (p: ProcessMemory): boolean => /^postgres: \S+ \S+ \[local\]/.test(p.name);

export interface FootprintResult {
  /** Highest total over the idle samples. */
  peak: TreeMemory;
  /** The last sample. */
  idle: TreeMemory;
  startMs: number;
  /** Seconds from ready to the first sample. */
  idledSeconds: number;
  /** With `viewers`: what the load was and the highest total seen from the viewers' first frames to the last sample. */
  load?: LoadResult;
}

/** The load of {@link measureFootprint}'s `viewers` option. */
export interface LoadResult {
  viewers: number;
  /** Viewers still receiving video: their count of reassembled frames grew over the samples. */
  viewersReceiving: number;
  /** Seconds from the publisher's connection to the last sample. */
  publishedSeconds: number;
  /** What the DVR holds by then if it keeps everything (the channel's ingest bitrate × publishedSeconds), MB. */
  dvrEstimateMb: number;
  /** What the DVR buffers hold at the last sample, by the server's count (`whipcast_dvr_memory_bytes`), MB. */
  dvrMb: number;
  /** The highest total over 1 s samples while loaded (thumbnails' ffmpeg and all). */
  max: TreeMemory;
}

/**
 * Starts the server as `npm start` does (plus `env`), idles `idleSeconds` (with `settle`: only until no
 * `passing` process is left in its tree, at most that long), samples its process tree, stops it.
 */
export async function measureFootprint(
  opts: {
    env?: Record<string, string>;
    idleSeconds?: number;
    samples?: number;
    settle?: boolean;
    /** The server's TMPDIR (with `tsx`, where it keeps its transform cache `tsx-<uid>`: a fresh one is a first start's cold cache). */
    tmpDir?: string;
    /** Run signaling/main.ts through tsx instead of the bundled dist/server.js. */
    tsx?: boolean;
    /** Extra arguments to node (before the script). */
    nodeArgs?: string[];
    /**
     * Load: one channel published by an OBS-like WHIP publisher (720p, 2.5 Mbit/s, keyframe 2 s, Opus) and this
     * many socket viewers (the web player's protocol; bots in this process, not in the measured tree), joined
     * once the server is ready; the idle wait and the samples follow.
     */
    viewers?: number;
  } = {},
) {
  if (!opts.tsx) await buildServer({ quiet: true });
  const dataDir = await mkdtemp(join(tmpdir(), 'whipcast-footprint-'));
  await chmod(dataDir, 0o711); // as root the embedded database runs as `postgres`, which must be able to enter it
  const port = await freePort();
  const started = Date.now();
  const script = opts.tsx ? ['--import', 'tsx', 'signaling/main.ts'] : [...SERVER_NODE_FLAGS, SERVER_JS];
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...script], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: '127.0.0.1',
      RTC_LISTEN_IP: '127.0.0.1',
      RTC_ANNOUNCED_ADDRESS: '127.0.0.1',
      RTC_PORT: '0',
      LOG_LEVEL: 'warn',
      ...(opts.tmpDir ? { TMPDIR: opts.tmpDir } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  child.stdout.on('data', (b: Buffer) => log.push(b.toString()));
  child.stderr.on('data', (b: Buffer) => log.push(b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanups: (() => void | Promise<void>)[] = [];
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited:\n${log.join('')}`);
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`server not ready in 60 s:\n${log.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const startMs = Date.now() - started;
    const url = `http://127.0.0.1:${port}`;
    const load = opts.viewers ? await startLoad(url, opts.viewers) : undefined;
    cleanups.push(() => load?.stop());
    let max: TreeMemory | undefined;
    const sample = () => {
      const t = treeMemory(child.pid!);
      if (!max || t.rssMb > max.rssMb) max = t;
      return t;
    };
    const ready = Date.now();
    const idleUntil = ready + (opts.idleSeconds ?? 10) * 1000;
    let lastSample = 0;
    while (Date.now() < idleUntil) {
      const tree = load && Date.now() - lastSample >= 1000 ? ((lastSample = Date.now()), sample()) : undefined;
      if (opts.settle && !(tree ?? treeMemory(child.pid!)).processes.some(passing)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const idledSeconds = (Date.now() - ready) / 1000;
    let peak: TreeMemory | undefined;
    let idle: TreeMemory | undefined;
    const framesBefore = load?.frames();
    for (let i = 0; i < (opts.samples ?? 5); i++) {
      if (i) await new Promise((r) => setTimeout(r, 1000));
      idle = sample();
      if (!peak || idle.rssMb > peak.rssMb) peak = idle;
    }
    const result: FootprintResult = { peak: peak!, idle: idle!, startMs, idledSeconds };
    if (load) {
      const framesAfter = load.frames();
      const publishedSeconds = (Date.now() - load.publishedAt) / 1000;
      const { bps, dvrBytes } = await mediaMetrics(url);
      result.load = {
        viewers: opts.viewers!,
        viewersReceiving: framesAfter.filter((n, i) => n > (framesBefore?.[i] ?? 0)).length,
        publishedSeconds,
        dvrEstimateMb: Math.round(((bps * publishedSeconds) / 8 / 2 ** 20) * 10) / 10,
        dvrMb: Math.round((dvrBytes / 2 ** 20) * 10) / 10,
        max: max!,
      };
    }
    return result;
  } finally {
    for (const c of cleanups.reverse()) await c();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The channel's ingest bitrate (audio + video, bit/s) and what the DVR buffers hold (bytes), from `/metrics`. */
async function mediaMetrics(url: string): Promise<{ bps: number; dvrBytes: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let bps = 0;
  for (const m of text.matchAll(/^whipcast_channel_ingest_bitrate_bps\{[^}]*\} (\S+)$/gm)) bps += Number(m[1]);
  const dvr = /^whipcast_dvr_memory_bytes (\S+)$/m.exec(text);
  if (!dvr) throw new Error('/metrics has no whipcast_dvr_memory_bytes');
  return { bps, dvrBytes: Number(dvr[1]) };
}

/** One published channel and `viewers` socket viewers, each with a first decoded video frame. */
async function startLoad(url: string, viewers: number) {
  // loaded only here: the idle measurement (db/footprint.test.ts) does not import the media stack
  const { ObsPublisher, SocketClient, SocketViewer } = await import('@whipcast/testkit');
  const { prepareChannel } = await import('../bench/server.ts');
  const ch = await prepareChannel(url);
  const video = { kbps: 2500, width: 1280, height: 720, keyframeInterval: 2, seconds: 4, profile: 'baseline' as const };
  const pub = await ObsPublisher.publish({ url: `${url}/whip`, token: ch.key, video });
  const bots: { socket: Awaited<ReturnType<typeof SocketClient.connect>>; viewer: InstanceType<typeof SocketViewer> }[] = [];
  const stop = () => {
    for (const b of bots) {
      b.viewer.close();
      b.socket.close();
    }
    pub.drop();
  };
  try {
    await pub.connected();
    const publishedAt = Date.now();
    // live once the publisher's first media arrived: viewers asking before are refused (`stream_offline`)
    for (const until = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const stream = (await (await fetch(`${url}/api/live/streams/${ch.streamId}`)).json()) as { status?: string };
      if (stream.status === 'live') break;
      if (Date.now() > until) throw new Error(`the channel did not go live in 15 s (status ${stream.status})`);
    }
    for (let i = 0; i < viewers; i++) {
      const socket = await SocketClient.connect(url);
      const viewer = new SocketViewer(socket, ch.streamId);
      bots.push({ socket, viewer });
      await viewer.start();
    }
    const deadline = Date.now() + 20_000;
    while (bots.some((b) => b.viewer.receiver.video.timeToFirstFrameMs === null)) {
      if (Date.now() > deadline) throw new Error('a viewer had no video frame within 20 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    return { publishedAt, frames: () => bots.map((b) => b.viewer.receiver.video.frames), stop };
  } catch (err) {
    stop();
    throw err;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const dash = args.indexOf('--');
  const env = Object.fromEntries(
    (dash >= 0 ? args.slice(dash + 1) : []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const result = await measureFootprint({
    env,
    idleSeconds: value('--idle-seconds'),
    samples: value('--samples'),
    settle: args.includes('--settle'),
    tsx: args.includes('--tsx'),
    viewers: value('--viewers'),
  });
  console.log(JSON.stringify(result, null, 2));
  process.exit(0); // the viewer bots' native peer connections keep the loop alive after closing
}
