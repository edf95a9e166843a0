/**
 * Test support (imported by tests only): real encoded media (testkit's ffmpeg
 * fixtures) packetized into RTP exactly as a channel's program delivers it —
 * one SSRC per kind, continuous sequence numbers, timestamps that jump by the
 * elapsed time across a publisher gap — and ffprobe/ffmpeg helpers.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  buildRtp,
  h264Fixture,
  numberedH264Fixture,
  numberedIvfFixture,
  numberedVp8Fixture,
  opusFixture,
  packetizeAv1,
  packetizeH264,
  packetizeVp8,
  packetizeVp9,
  readFrameNumber,
  withStamp,
  type H264Options,
} from '@whipcast/testkit';
import type { MediaKind } from './types.ts';

const run = promisify(execFile);

export interface FeedPacket {
  packet: Buffer;
  info: { kind: MediaKind; arrivalMs: number };
}

export interface ProgramFeedOptions {
  /** Media seconds to generate (gaps included). */
  seconds: number;
  /** Video codec, or none (VP9 and AV1 are always the frame-numbered picture). */
  video?: 'h264' | 'vp8' | 'vp9' | 'av1';
  /** Include Opus audio (default true). */
  audio?: boolean;
  /** Arrival time of the first packet (ms since the epoch; default a fixed instant). */
  startMs?: number;
  /** Publisher gaps: nothing arrives in [at, at + seconds); video resumes at a keyframe. */
  gaps?: { at: number; seconds: number }[];
  /** H.264 fixture options (fps and keyframe interval also apply to VP8). */
  h264?: Partial<H264Options>;
  /** Use testkit's frame-numbered picture: frame n shows n (`readFrameNumber`, `framesOfFile`). */
  numbered?: boolean;
}

export interface ProgramFeed {
  packets: FeedPacket[];
  fps: number;
  /** Arrival time of the first packet. */
  startMs: number;
  /** Video frames sent: frame number (as stamped in H.264 SEI) and arrival time. */
  frames: { frame: number; arrivalMs: number }[];
}

/**
 * Packets of a program in arrival order. H.264 frames carry their frame
 * number in an SEI stamp (`findStamp` reads it back); frame n is shown at n / fps.
 */
export async function programFeed(opts: ProgramFeedOptions): Promise<ProgramFeed> {
  const startMs = opts.startMs ?? 1_700_000_000_000;
  const h = opts.h264 ?? {};
  const fps = h.fps ?? 30;
  const gop = Math.round(fps * (h.keyframeInterval ?? 1));
  const inGap = (t: number) => (opts.gaps ?? []).some((g) => t >= g.at && t < g.at + g.seconds);
  const packets: FeedPacket[] = [];
  const frames: ProgramFeed['frames'] = [];
  if (opts.video) {
    const numbered = opts.numbered ?? false;
    const source =
      opts.video === 'h264'
        ? await h264Frames(h, numbered)
        : opts.video === 'vp8'
          ? await vp8Frames({ fps, gop, width: h.width ?? 640, height: h.height ?? 360 }, numbered ? h : null)
          : await ivfVideoFrames(opts.video, h);
    let seq = 1000;
    const ts0 = 0xffff0000; // wraps within the first second: exercises unwrapping
    let resumeAtKey = false;
    for (let n = 0; n / fps < opts.seconds; n++) {
      const t = n / fps;
      if (inGap(t)) {
        resumeAtKey = true;
        continue;
      }
      if (resumeAtKey && n % gop !== 0) continue;
      resumeAtKey = false;
      const arrivalMs = startMs + t * 1000;
      const payloads = source(n);
      frames.push({ frame: n, arrivalMs });
      payloads.forEach((payload, i) => {
        const packet = buildRtp(
          {
            payloadType: 96,
            sequenceNumber: seq++ & 0xffff,
            timestamp: (ts0 + Math.round(t * 90000)) >>> 0,
            ssrc: 1111,
            marker: i === payloads.length - 1,
          },
          payload,
        );
        packets.push({ packet, info: { kind: 'video', arrivalMs } });
      });
    }
  }
  if (opts.audio ?? true) {
    const opus = await opusFixture();
    let seq = 50000;
    const ts0 = 123456;
    for (let j = 0; j * 0.02 < opts.seconds; j++) {
      const t = j * 0.02;
      if (inGap(t)) continue;
      const packet = buildRtp(
        { payloadType: 111, sequenceNumber: seq++ & 0xffff, timestamp: (ts0 + j * 960) >>> 0, ssrc: 2222, marker: false },
        opus[j % opus.length]!,
      );
      packets.push({ packet, info: { kind: 'audio', arrivalMs: startMs + t * 1000 } });
    }
  }
  packets.sort((a, b) => a.info.arrivalMs - b.info.arrivalMs);
  return { packets, fps, startMs, frames };
}

async function h264Frames(h: Partial<H264Options>, numbered: boolean): Promise<(n: number) => Uint8Array[]> {
  const fx = numbered ? await numberedH264Fixture({ seconds: 40, ...h }) : await h264Fixture(h);
  return (n) => packetizeH264(withStamp(fx.frames[n % fx.frames.length]!.nals, { captureUs: 0, frame: n }));
}

/** VP8 frames (libvpx, IVF), packetized per RFC 7741 with a 15-bit PictureID as browsers send it. */
async function vp8Frames(
  o: { fps: number; gop: number; width: number; height: number },
  numbered: Partial<H264Options> | null,
): Promise<(n: number) => Uint8Array[]> {
  let frames: Uint8Array[];
  if (numbered) frames = (await numberedVp8Fixture({ seconds: 40, ...numbered })).frames.map((f) => f.data);
  else {
    const ivf = await cachedFixture(`vp8-${o.width}x${o.height}-${o.fps}-${o.gop}.ivf`, (out) =>
      ffmpeg([
        ...['-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`, '-t', '4'],
        ...[
          '-c:v',
          'libvpx',
          '-deadline',
          'realtime',
          '-cpu-used',
          '8',
          '-b:v',
          '1M',
          '-g',
          String(o.gop),
          '-keyint_min',
          String(o.gop),
          '-auto-alt-ref',
          '0',
        ],
        ...['-f', 'ivf', out],
      ]),
    );
    frames = [];
    for (let off = ivf.readUInt16LE(6); off + 12 <= ivf.length;) {
      const size = ivf.readUInt32LE(off);
      frames.push(ivf.subarray(off + 12, off + 12 + size));
      off += 12 + size;
    }
  }
  return (n) => packetizeVp8(frames[n % frames.length]!, n & 0x7fff);
}

/** Frame-numbered VP9 (RFC 9628, non-flexible mode) or AV1 (AV1 RTP spec) packets, as a browser sends them. */
async function ivfVideoFrames(codec: 'vp9' | 'av1', h: Partial<H264Options>): Promise<(n: number) => Uint8Array[]> {
  const fx = await numberedIvfFixture(codec, { seconds: 40, ...h });
  const size = { width: fx.options.width, height: fx.options.height };
  return (n) => {
    const frame = fx.frames[n % fx.frames.length]!.data;
    return codec === 'vp9' ? packetizeVp9(frame, n & 0x7fff, size) : packetizeAv1(frame);
  };
}

async function cachedFixture(name: string, make: (out: string) => Promise<unknown>): Promise<Buffer> {
  const dir = join(process.env.WHIPCAST_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whipcast'), 'fixtures');
  const file = join(dir, `recording-${name}`);
  try {
    return await readFile(file);
  } catch {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp${name.slice(name.lastIndexOf('.'))}`;
    await make(tmp);
    await rename(tmp, file);
    return readFile(file);
  }
}

export async function ffmpeg(args: string[]): Promise<string> {
  try {
    const { stderr } = await run('ffmpeg', ['-hide_banner', '-nostdin', '-y', ...args], { maxBuffer: 64 << 20 });
    return stderr;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('ffmpeg not found: the test command installs it (Debian package ffmpeg)');
    throw new Error(`ffmpeg failed: ${e.stderr ?? e.message}`);
  }
}

export interface ProbeResult {
  format: { format_name: string; duration?: string };
  streams: { codec_type: string; codec_name: string; duration?: string; width?: number; height?: number; nb_read_frames?: string }[];
}

/** ffprobe's view of a file (counting frames when `countFrames`). */
export async function ffprobe(path: string, countFrames = false): Promise<ProbeResult> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', ...(countFrames ? ['-count_frames'] : []), '-show_format', '-show_streams', '-of', 'json', path],
    {
      maxBuffer: 64 << 20,
    },
  );
  return JSON.parse(stdout) as ProbeResult;
}

/** Decodes the whole file; returns ffmpeg's error output (empty when the decode was clean). */
export async function decodeErrors(path: string): Promise<string> {
  const stderr = await ffmpeg(['-v', 'error', '-i', path, '-f', 'null', '-']);
  return stderr.trim();
}

/** Top-level box types of an MP4 file, in order. */
export function topLevelBoxes(data: Buffer): string[] {
  const out: string[] = [];
  for (let off = 0; off + 8 <= data.length;) {
    let size = data.readUInt32BE(off);
    const type = data.toString('latin1', off + 4, off + 8);
    if (size === 1) size = Number(data.readBigUInt64BE(off + 8));
    if (size === 0) size = data.length - off;
    out.push(type);
    if (size < 8) break;
    off += size;
  }
  return out;
}

/** End of the last packet (pts + duration, seconds) over all streams, read packet by packet (files without a duration too). */
export async function mediaEnd(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=pts_time,duration_time', '-of', 'csv=p=0', path], {
    maxBuffer: 256 << 20,
  });
  let end = 0;
  for (const line of stdout.split('\n')) {
    const [pts, dur] = line.split(',').map(Number);
    if (Number.isFinite(pts)) end = Math.max(end, pts! + (Number.isFinite(dur) ? dur! : 0));
  }
  return end;
}

/** The frame number shown at `seconds` into a file, as a player seeking there shows it (ffmpeg accurate seek). */
export async function frameNumberAt(path: string, seconds: number, width: number, height: number): Promise<number | null> {
  const { stdout } = await run(
    'ffmpeg',
    [
      '-v',
      'error',
      '-nostdin',
      '-ss',
      String(seconds),
      '-i',
      path,
      '-frames:v',
      '1',
      '-vf',
      `scale=${width}:${height}`,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgba',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 << 20 },
  );
  return readFrameNumber(stdout, width, height);
}
