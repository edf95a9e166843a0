/**
 * The recorder on real media: H.264, VP8, VP9 and AV1 + Opus programs (ffmpeg
 * fixtures, packetized as the SFU's program delivers them) are recorded and
 * the files checked with ffprobe and a full ffmpeg decode; frame numbers
 * stamped into the video prove every frame sits at its live time, across a
 * publisher reconnect. A recorder killed with SIGKILL leaves a playable file;
 * a full disk stops the recording with an error event and a playable file.
 * The faststart export puts `moov` before `mdat`.
 */
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findStamp, framesOfFile, splitAnnexB } from '@whipcast/testkit';
import { ALL_FORMATS, EncodedPacketSink, FilePathSource, Input } from 'mediabunny';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProgramTrack } from '../program.ts';
import { exportProgressive } from './export.ts';
import { avccToAnnexB } from './h264.ts';
import { inspectRecording, repairRecording } from './inspect.ts';
import { Recorder } from './recorder.ts';
import type { ProgramTrackLike } from './types.ts';
import { decodeErrors, ffprobe, frameNumberAt, mediaEnd, programFeed, topLevelBoxes, type ProgramFeed } from './testing.ts';

// the SFU's program track is what `Recorder.attach` takes (checked by the type checker)
const programTrackFits: ProgramTrack extends ProgramTrackLike ? true : never = true;
void programTrackFits;

const dir = mkdtempSync(join(tmpdir(), 'whipcast-rec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const H264 = { mimeType: 'video/H264', clockRate: 90000 };
const VP8 = { mimeType: 'video/VP8', clockRate: 90000 };
const OPUS = { mimeType: 'audio/opus', clockRate: 48000, channels: 2 };

async function record(feed: ProgramFeed, path: string, video = H264): Promise<Recorder> {
  const recorder = new Recorder({ path, video, audio: OPUS });
  for (const p of feed.packets) recorder.push(p.packet, p.info);
  await recorder.close();
  return recorder;
}

/** Video frames of an MP4 as (time, stamped frame number). */
async function stampedFrames(path: string): Promise<{ time: number; frame: number | undefined; key: boolean }[]> {
  const input = new Input({ source: new FilePathSource(path), formats: ALL_FORMATS });
  try {
    const track = (await input.getPrimaryVideoTrack())!;
    const out: { time: number; frame: number | undefined; key: boolean }[] = [];
    for await (const p of new EncodedPacketSink(track).packets()) {
      out.push({ time: p.timestamp, frame: findStamp(splitAnnexB(avccToAnnexB(p.data)))?.frame, key: p.type === 'key' });
    }
    return out;
  } finally {
    input.dispose();
  }
}

const seconds = (s: string | undefined) => Number(s ?? NaN);

describe('Recorder', () => {
  it('records H.264 + Opus as fragmented MP4 that ffprobe and ffmpeg read; frames sit at their live time across a reconnect', async () => {
    // 20 s live; the publisher drops at 12 s and is back at 14 s (the program's timestamps jump by 2 s)
    const feed = await programFeed({ seconds: 20, video: 'h264', gaps: [{ at: 12, seconds: 2 }] });
    const path = join(dir, 'h264.mp4');
    const recorder = await record(feed, path);
    expect(recorder.state).toBe('closed');
    expect(recorder.stats).toMatchObject({ droppedFrames: 0, lostPackets: 0 });
    expect(recorder.stats.fragments).toBeGreaterThanOrEqual(17); // a fragment per 1 s keyframe interval

    const probe = await ffprobe(path, true);
    const video = probe.streams.find((s) => s.codec_type === 'video')!;
    const audio = probe.streams.find((s) => s.codec_type === 'audio')!;
    expect(video).toMatchObject({ codec_name: 'h264', width: 640, height: 360 });
    expect(audio.codec_name).toBe('opus');
    expect(Math.abs(seconds(probe.format.duration) - 20)).toBeLessThan(0.5);
    expect(Math.abs(seconds(audio.duration) - 20)).toBeLessThan(0.5);
    expect(Number(video.nb_read_frames)).toBe(feed.frames.length); // 600 − the 60 frames of the gap
    expect(await decodeErrors(path)).toBe('');
    expect(topLevelBoxes(readFileSync(path)).filter((b) => b === 'moof').length).toBe(recorder.stats.fragments);

    // every frame is at its live time: frame n at n / 30 s, including after the reconnect
    const frames = await stampedFrames(path);
    expect(frames).toHaveLength(feed.frames.length);
    for (const f of frames) expect(Math.abs(f.time - f.frame! / 30)).toBeLessThan(0.002);
    // seeking to 10 s lands on frame 300; the first frame after the gap is a keyframe at 14 s
    expect(frames.find((f) => f.time >= 10)!.frame).toBe(300);
    const afterGap = frames.find((f) => f.time >= 12)!;
    expect(afterGap).toMatchObject({ frame: 420, key: true });
  });

  it('frame-numbered picture: the recording shows every live frame in order, across a reconnect; seeking to 10 s shows frame 300', async () => {
    const feed = await programFeed({ seconds: 20, video: 'h264', numbered: true, gaps: [{ at: 12, seconds: 2 }] });
    const path = join(dir, 'numbered.mp4');
    await record(feed, path);
    expect(await framesOfFile(path)).toEqual(feed.frames.map((f) => f.frame));
    expect(await frameNumberAt(path, 10, 640, 360)).toBe(300);
    expect(await frameNumberAt(path, 13, 640, 360)).toBe(420); // in the gap: the first picture after it is the reconnect's keyframe at 14 s
    expect(await frameNumberAt(path, 15, 640, 360)).toBe(450);

    const vp8 = await programFeed({ seconds: 8, video: 'vp8', numbered: true, gaps: [{ at: 4, seconds: 1 }] });
    const webm = join(dir, 'numbered.webm');
    await record(vp8, webm, VP8);
    expect(await framesOfFile(webm)).toEqual(vp8.frames.map((f) => f.frame));
  }, 120_000);

  it('records VP8 + Opus as live WebM', async () => {
    const feed = await programFeed({ seconds: 10, video: 'vp8', gaps: [{ at: 5, seconds: 1 }] });
    const path = join(dir, 'vp8.webm');
    const recorder = await record(feed, path, VP8);
    expect(recorder.container).toBe('webm');
    const probe = await ffprobe(path, true);
    expect(probe.format.format_name).toContain('webm');
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    expect(Number(probe.streams.find((s) => s.codec_name === 'vp8')!.nb_read_frames)).toBe(feed.frames.length);
    // append-only WebM has no duration in its header; the packets span the session
    expect(Math.abs((await mediaEnd(path)) - 10)).toBeLessThan(0.5);
    expect(await decodeErrors(path)).toBe('');
  });

  for (const [codec, mimeType, name] of [
    ['vp9', 'video/VP9', 'vp9'],
    ['av1', 'video/AV1', 'av1'],
  ] as const) {
    it(`records ${name.toUpperCase()} + Opus as fragmented MP4 (every frame in order across a reconnect) and exports it moov first`, async () => {
      const feed = await programFeed({ seconds: 10, video: codec, gaps: [{ at: 5, seconds: 1 }] });
      const path = join(dir, `${name}.mp4`);
      const recorder = await record(feed, path, { mimeType, clockRate: 90000 });
      expect(recorder.container).toBe('mp4');
      expect(recorder.stats).toMatchObject({ droppedFrames: 0, lostPackets: 0 });
      const boxes = topLevelBoxes(readFileSync(path));
      expect(boxes.slice(0, 2)).toEqual(['ftyp', 'moov']);
      expect(boxes.filter((b) => b === 'moof').length).toBeGreaterThanOrEqual(8);
      const probe = await ffprobe(path, true);
      const video = probe.streams.find((s) => s.codec_type === 'video')!;
      expect(video).toMatchObject({ codec_name: name, width: 640, height: 360 });
      expect(Number(video.nb_read_frames)).toBe(feed.frames.length); // 300 − the 30 frames of the gap
      expect(Math.abs(seconds(probe.format.duration) - 10)).toBeLessThan(0.5);
      expect(await decodeErrors(path)).toBe('');
      expect(await framesOfFile(path)).toEqual(feed.frames.map((f) => f.frame));
      expect(await frameNumberAt(path, 7, 640, 360)).toBe(210);

      const download = join(dir, `${name}.dl.mp4`);
      expect(await exportProgressive(path, download)).toMatchObject({ container: 'mp4' });
      const dl = topLevelBoxes(readFileSync(download));
      expect(dl.indexOf('moov')).toBeLessThan(dl.indexOf('mdat'));
      expect(dl).not.toContain('moof');
      expect((await ffprobe(download)).streams.map((s) => s.codec_name).sort()).toEqual([name, 'opus'].sort());
      expect(await framesOfFile(download)).toEqual(feed.frames.map((f) => f.frame));
    }, 60_000);
  }

  it('exports a progressive MP4 with moov before mdat, from a finished recording and from one still being written', async () => {
    const feed = await programFeed({ seconds: 12, video: 'h264' });
    const live = join(dir, 'live.mp4');
    const recorder = new Recorder({ path: live, video: H264, audio: OPUS });
    const checkpoints: { bytes: number; seconds: number }[] = [];
    recorder.on('fragment', (c) => checkpoints.push(c));
    const half = feed.packets.filter((p) => p.info.arrivalMs < feed.startMs + 6000);
    for (const p of half) recorder.push(p.packet, p.info);
    await new Promise((r) => setTimeout(r, 200)); // let the fragments reach the disk

    // in progress: everything up to the last complete fragment
    const partial = join(dir, 'partial-download.mp4');
    const r1 = await exportProgressive(live, partial);
    expect(topLevelBoxes(readFileSync(partial)).slice(0, 2)).toEqual(['ftyp', 'moov']);
    const last = checkpoints.at(-1)!;
    expect(Math.abs(r1.seconds - last.seconds)).toBeLessThan(1.1);
    expect(await decodeErrors(partial)).toBe('');

    for (const p of feed.packets.slice(half.length)) recorder.push(p.packet, p.info);
    await recorder.close();
    const download = join(dir, 'download.mp4');
    const r2 = await exportProgressive(live, download);
    expect(r2).toMatchObject({ container: 'mp4', bytes: statSync(download).size });
    const boxes = topLevelBoxes(readFileSync(download));
    expect(boxes.indexOf('moov')).toBeGreaterThanOrEqual(0);
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    expect(boxes).not.toContain('moof');
    const probe = await ffprobe(download, true);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['h264', 'opus']);
    expect(Math.abs(seconds(probe.format.duration) - 12)).toBeLessThan(0.5);
    expect(Number(probe.streams.find((s) => s.codec_name === 'h264')!.nb_read_frames)).toBe(360);
    expect(await decodeErrors(download)).toBe('');
  });

  it('a recorder killed with SIGKILL leaves a file that plays to within ~1 s of the kill', async () => {
    const path = join(dir, 'killed.mp4');
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./crash-child.ts', import.meta.url)), path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let pushed = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child stalled at ${pushed} s`)), 40_000);
        child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
        createInterface({ input: child.stdout! }).on('line', (line) => {
          pushed = Number(line.split(' ')[1]);
          if (pushed >= 6.45) {
            child.kill('SIGKILL');
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    const probe = await ffprobe(path, true);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['h264', 'opus']);
    const duration = seconds(probe.format.duration);
    // lost: at most the fragment being built (one 1 s keyframe interval) plus a held-back frame
    expect(duration).toBeGreaterThan(pushed - 1.1);
    expect(duration).toBeLessThan(pushed + 0.5);
    expect(await decodeErrors(path)).toBe('');
    // after a restart it is listed with its real duration and downloads as a faststart MP4
    expect((await inspectRecording(path)).seconds).toBeCloseTo(duration, 0);
    const download = join(dir, 'killed-download.mp4');
    await exportProgressive(path, download);
    expect(await decodeErrors(download)).toBe('');

    // a machine crash can also cut the last fragment short: repair trims it back to the last complete one
    const torn = join(dir, 'torn.mp4');
    copyFileSync(path, torn);
    truncateSync(torn, statSync(torn).size - 3000);
    expect(await decodeErrors(torn)).not.toBe('');
    expect(await repairRecording(torn)).toBeGreaterThan(3000);
    expect(await repairRecording(torn)).toBe(0);
    expect(await decodeErrors(torn)).toBe('');
  });

  it('a full disk stops the recording with an ENOSPC error event; the caller goes on and the file plays', async () => {
    const mnt = mkdtempSync(join(tmpdir(), 'whipcast-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const feed = await programFeed({ seconds: 20, video: 'h264' }); // ≈ 2.6 MB
      const path = join(mnt, 'full.mp4');
      const recorder = new Recorder({ path, video: H264, audio: OPUS });
      const errors: Error[] = [];
      recorder.on('error', (e) => errors.push(e));
      const closed = new Promise<void>((r) => recorder.once('close', () => r()));
      for (const [i, p] of feed.packets.entries()) {
        recorder.push(p.packet, p.info); // never throws
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
      await closed;
      expect(recorder.state).toBe('failed');
      expect(errors).toHaveLength(1);
      expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOSPC');
      await recorder.close(); // idempotent, no second error
      expect(errors).toHaveLength(1);
      // trimmed to its last complete fragment: it decodes cleanly
      const probe = await ffprobe(path, true);
      expect(seconds(probe.format.duration)).toBeGreaterThan(4);
      expect(await decodeErrors(path)).toBe('');
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('exporting onto a full disk fails with ENOSPC and leaves no file (not a file cut where the disk filled)', async () => {
    const feed = await programFeed({ seconds: 6, video: 'h264' }); // ≈ 0.8 MB
    const live = join(dir, 'to-export.mp4');
    await record(feed, live);
    const mnt = mkdtempSync(join(tmpdir(), 'whipcast-full-export-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
    try {
      const failure = await exportProgressive(live, join(mnt, 'download.mp4')).then(
        () => null,
        (err: unknown) => err as NodeJS.ErrnoException,
      );
      expect(failure?.code).toBe('ENOSPC');
      expect(readdirSync(mnt)).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it('rejects codecs it cannot record', () => {
    expect(() => new Recorder({ path: join(dir, 'x.mp4'), video: { mimeType: 'video/H265', clockRate: 90000 } })).toThrow(/cannot record/);
  });
});
