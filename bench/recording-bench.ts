/**
 * The recording benchmark: what recording costs per channel. One whipcast
 * process (child, on loopback); N OBS-like publishers (in this process) on N
 * channels whose owners turned "Save past broadcasts" off, measured; then N
 * more channels with it on (the default), measured the same way; then the
 * end of the recorded sessions (the download files being built). Measured
 * from /proc: CPU of the Node main process and its mediasoup workers, and
 * `write_bytes` (bytes this process made the kernel write to storage) of both;
 * the recordings directory's growth is the cross-check.
 */
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObsPublisher } from '@whipcast/testkit';
import { children, cpuShare, ioSample, sample } from './proc.ts';
import { prepareChannel, startServer, stopRecording } from './server.ts';
import { f } from './table.ts';

export interface RecordingBenchOptions {
  /** Channels published at once in each run. */
  channels: number;
  /** Measured seconds of each run (after a settle of one keyframe interval + 2 s). */
  seconds: number;
  kbps: number;
  width: number;
  height: number;
  /** Publisher keyframe interval, s. */
  keyframeInterval: number;
  /** Called with the server's pids once it runs (CPU pinning). */
  onServers?(pids: number[]): void;
  progress(text: string): void;
}

/** One run: N channels live, recording off or on. */
export interface RecordingRun {
  recording: boolean;
  channels: number;
  seconds: number;
  /** CPU as a fraction of one core. */
  cpu: { main: number; workers: number };
  /** Bytes the server's processes had written to storage per second (/proc/<pid>/io write_bytes), kB/s. */
  writeKBps: number;
  /** How fast the recordings directory grew, kB/s. */
  filesKBps: number;
}

export interface RecordingBenchResult {
  off: RecordingRun;
  on: RecordingRun;
  /** The recorded sessions' end: every download file built (`moov` first, a second copy of the recording). */
  finish: { seconds: number; cpuSeconds: number; writtenMb: number; recordings: number };
  /** Recording's cost per recorded channel: the difference of the two runs divided by N. */
  perChannel: { cpu: number; writeKBps: number; filesKBps: number; gbPerHour: number };
  /** on / off. */
  ratio: { cpu: number; write: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) total += statSync(join(e.parentPath, e.name), { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

interface Snapshot {
  at: number;
  main: ReturnType<typeof sample>;
  workers: ReturnType<typeof sample>[];
  written: number;
  files: number;
}

/** Runs both runs and the finish on one server; everything stops before it returns. */
export async function runRecordingBench(opts: RecordingBenchOptions): Promise<RecordingBenchResult> {
  if (!(opts.channels >= 1 && opts.seconds > 0)) throw new Error('recording bench: channels ≥ 1 and seconds > 0');
  const dir = await mkdtemp(join(tmpdir(), 'whipcast-bench-recordings-'));
  const server = await startServer({ RECORDINGS_DIR: dir });
  try {
    const pid = server.pid;
    if (!pid) throw new Error('recording bench: the server has no pid');
    const workerPids = () => children(pid, /mediasoup/);
    opts.onServers?.([pid, ...workerPids()]);
    const snap = (): Snapshot => {
      const pids = [pid, ...workerPids()];
      return {
        at: performance.now(),
        main: sample(pid),
        workers: workerPids().map(sample),
        written: pids.reduce((n, p) => n + (ioSample(p)?.writeBytes ?? 0), 0),
        files: dirBytes(dir),
      };
    };
    const video = { kbps: opts.kbps, width: opts.width, height: opts.height, keyframeInterval: opts.keyframeInterval };

    const run = async (recording: boolean): Promise<{ run: RecordingRun; streamIds: string[] }> => {
      const label = recording ? 'on' : 'off';
      opts.progress(`recording ${label}: ${opts.channels} channels publishing`);
      const channels = await Promise.all(Array.from({ length: opts.channels }, () => prepareChannel(server.url)));
      if (!recording) for (const ch of channels) await stopRecording(server.url, ch);
      const pubs = await Promise.all(channels.map((ch) => ObsPublisher.publish({ url: `${server.url}/whip`, token: ch.key, video })));
      try {
        await Promise.all(pubs.map((p) => p.connected()));
        await sleep(opts.keyframeInterval * 1000 + 2000);
        opts.progress(`recording ${label}: measuring ${opts.seconds} s`);
        const a = snap();
        await sleep(opts.seconds * 1000);
        const b = snap();
        const s = (b.at - a.at) / 1000;
        const workers = b.workers.reduce((sum, w) => sum + cpuShare(a.workers.find((x) => x?.pid === w?.pid) ?? null, w, s), 0);
        return {
          streamIds: channels.map((c) => c.streamId),
          run: {
            recording,
            channels: opts.channels,
            seconds: s,
            cpu: { main: cpuShare(a.main, b.main, s), workers },
            writeKBps: (b.written - a.written) / s / 1000,
            filesKBps: (b.files - a.files) / s / 1000,
          },
        };
      } finally {
        await Promise.all(pubs.map((p) => p.stop().catch(() => 0)));
      }
    };

    const off = await run(false);
    await sleep(1000);
    const on = await run(true);

    // the end of the recorded sessions: each download file is built (a second copy)
    opts.progress('recording: sessions ending, download files being built');
    const a = snap();
    const finished = async () => {
      let done = 0;
      for (const id of on.streamIds) {
        const res = await fetch(`${server.url}/api/live/streams/${id}/recordings`);
        const body = (await res.json()) as { recordings: { endedAt: string | null }[] };
        if (body.recordings.length && body.recordings.every((r) => r.endedAt !== null)) done++;
      }
      return done;
    };
    const deadline = performance.now() + 60_000 + opts.seconds * 1000;
    let recordings = 0;
    while ((recordings = await finished()) < on.streamIds.length && performance.now() < deadline) await sleep(200);
    const b = snap();
    const cpuSeconds =
      (b.main?.cpuSeconds ?? 0) -
      (a.main?.cpuSeconds ?? 0) +
      b.workers.reduce((sum, w) => sum + (w?.cpuSeconds ?? 0), 0) -
      a.workers.reduce((sum, w) => sum + (w?.cpuSeconds ?? 0), 0);
    const finish = { seconds: (b.at - a.at) / 1000, cpuSeconds, writtenMb: (b.written - a.written) / 1e6, recordings };

    const n = opts.channels;
    const cpuOf = (r: RecordingRun) => r.cpu.main + r.cpu.workers;
    const perChannel = {
      cpu: (cpuOf(on.run) - cpuOf(off.run)) / n,
      writeKBps: (on.run.writeKBps - off.run.writeKBps) / n,
      filesKBps: (on.run.filesKBps - off.run.filesKBps) / n,
      gbPerHour: 0,
    };
    perChannel.gbPerHour = (perChannel.filesKBps * 1000 * 3600) / 1e9;
    return {
      off: off.run,
      on: on.run,
      finish,
      perChannel,
      ratio: { cpu: cpuOf(on.run) / cpuOf(off.run), write: off.run.writeKBps > 0 ? on.run.writeKBps / off.run.writeKBps : Infinity },
    };
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The report's recording section. */
export function recordingTable(r: RecordingBenchResult | null | undefined): string[] {
  if (!r) return [];
  const rows = [['recording', 'channels', 'seconds', 'main CPU', 'worker CPU', 'server CPU', 'disk writes kB/s', 'recordings grow kB/s']];
  for (const run of [r.off, r.on])
    rows.push([
      run.recording ? 'on' : 'off',
      String(run.channels),
      f(run.seconds),
      `${f(run.cpu.main * 100, 1)}%`,
      `${f(run.cpu.workers * 100, 1)}%`,
      `${f((run.cpu.main + run.cpu.workers) * 100, 1)}%`,
      f(run.writeKBps),
      f(run.filesKBps),
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const p = r.perChannel;
  return [
    '',
    ...lines,
    `per recorded channel: ${p.cpu >= 0 ? '+' : '−'}${f(Math.abs(p.cpu) * 100, 2)}% of a core, +${f(p.writeKBps)} kB/s written ` +
      `(${f(p.gbPerHour, 2)} GB/h of recording); on/off: server CPU ×${f(r.ratio.cpu, 2)}, disk writes ×${f(r.ratio.write, 1)}`,
    `end of ${r.finish.recordings} recorded session${r.finish.recordings === 1 ? '' : 's'}: download files built in ${f(r.finish.seconds, 1)} s, ` +
      `${f(r.finish.cpuSeconds, 2)} CPU s, ${f(r.finish.writtenMb, 1)} MB written`,
    '  server CPU = Node main + mediasoup workers, as a share of one core; disk writes = /proc/<pid>/io write_bytes of those processes;',
    '  "recordings grow" = the recordings directory\'s growth (the live files; the download copy is built when a session ends).',
  ];
}
