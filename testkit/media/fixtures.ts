/**
 * Real encoded media for tests and benchmarks, made by ffmpeg once and cached
 * (`$WHIPCAST_CACHE_DIR/fixtures`). H.264 is encoded the way OBS's WHIP output
 * encodes it: x264, zerolatency, no B-frames, SPS/PPS repeated before each IDR.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { accessUnits, splitAnnexB, type AccessUnit } from '../rtp/h264.ts';
import { opusPacketsFromOgg } from '../rtp/ogg.ts';
import { isAv1Keyframe } from '../rtp/av1.ts';
import { isVp8Keyframe, ivfFrames, type Vp8Frame } from '../rtp/vp8.ts';
import { isVp9Keyframe } from '../rtp/vp9.ts';
import { frameNumberFilter, MAX_FRAME_NUMBER } from './frame-number.ts';

const run = promisify(execFile);

export interface H264Options {
  width: number;
  height: number;
  fps: number;
  /** Video bitrate, kbit/s. */
  kbps: number;
  /** Seconds between keyframes. */
  keyframeInterval: number;
  profile: 'baseline' | 'main' | 'high';
  /** Seconds of video (the publisher loops it). */
  seconds: number;
}

export const DEFAULT_H264: H264Options = {
  width: 640,
  height: 360,
  fps: 30,
  kbps: 1000,
  keyframeInterval: 1,
  profile: 'baseline',
  seconds: 4,
};

export interface H264Fixture {
  options: H264Options;
  frames: AccessUnit[];
}

function fixturesDir(): string {
  return join(process.env.WHIPCAST_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whipcast'), 'fixtures');
}

async function cached(name: string, params: unknown, make: (out: string) => Promise<void>): Promise<Buffer> {
  const dir = fixturesDir();
  const file = join(dir, `${name}-${createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 12)}`);
  try {
    return await readFile(file);
  } catch {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    await make(tmp);
    await rename(tmp, file);
    return readFile(file);
  }
}

async function ffmpeg(args: string[]): Promise<void> {
  try {
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('ffmpeg not found: the test command installs it (Debian package ffmpeg)');
    throw new Error(`ffmpeg failed: ${e.stderr ?? e.message}`);
  }
}

const fixtureCache = new Map<string, Promise<H264Fixture>>();

function x264Args(o: H264Options): string[] {
  const gop = Math.max(1, Math.round(o.fps * o.keyframeInterval));
  return [
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', o.profile, '-pix_fmt', 'yuv420p'],
    ...['-bf', '0', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0'],
    ...['-b:v', `${o.kbps}k`, '-maxrate', `${o.kbps}k`, '-bufsize', `${o.kbps}k`],
    ...['-x264-params', 'repeat-headers=1:aud=0', '-f', 'h264'],
  ];
}

const testSource = (o: H264Options): string[] => [
  '-f',
  'lavfi',
  '-i',
  `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`,
  '-t',
  String(o.seconds),
];

function loadH264(name: string, o: H264Options, filter: string | null): Promise<H264Fixture> {
  const key = JSON.stringify([name, o]);
  let p = fixtureCache.get(key);
  if (!p) {
    p = (async () => {
      const data = await cached(name, o, (out) => ffmpeg([...testSource(o), ...(filter ? ['-vf', filter] : []), ...x264Args(o), out]));
      const frames = accessUnits(splitAnnexB(data));
      if (!frames[0]?.keyframe) throw new Error('fixture does not start with a keyframe');
      return { options: o, frames };
    })();
    fixtureCache.set(key, p);
  }
  return p;
}

export function h264Fixture(opts: Partial<H264Options> = {}): Promise<H264Fixture> {
  return loadH264('h264', { ...DEFAULT_H264, ...opts }, null);
}

/**
 * Frame-numbered video is long so that a test never sees the numbers wrap: a
 * publisher loops its fixture, and frame i of the loop shows number i mod length.
 */
export const DEFAULT_NUMBERED: H264Options = { ...DEFAULT_H264, seconds: 180 };

function numberedOptions(opts: Partial<H264Options>): H264Options {
  const o = { ...DEFAULT_NUMBERED, ...opts };
  if (o.seconds * o.fps > MAX_FRAME_NUMBER + 1) throw new Error(`a numbered fixture holds at most ${MAX_FRAME_NUMBER + 1} frames`);
  return o;
}

/**
 * H.264 test picture whose frame i shows the number i as a visible pattern
 * (see `readFrameNumber`); 180 s at 30 fps unless `seconds` says otherwise.
 */
export function numberedH264Fixture(opts: Partial<H264Options> = {}): Promise<H264Fixture> {
  const o = numberedOptions(opts);
  return loadH264('h264-numbered-v1', o, frameNumberFilter(o.width, o.height));
}

/**
 * The numbered picture as simulcast layers: the full-size fixture and one per
 * scale (default ½ and ¼, like OBS's and browsers' layers), each drawn at its
 * own size so frame i shows i in every layer, with keyframes at the same
 * frames; bitrates scale with the area (at least 100 kbit/s). Largest first.
 */
export function numberedLayerFixtures(opts: Partial<H264Options> = {}, scales: readonly number[] = [0.5, 0.25]): Promise<H264Fixture[]> {
  const top = numberedOptions(opts);
  const even = (v: number) => Math.max(2, 2 * Math.round(v / 2));
  return Promise.all(
    [1, ...scales].map((k) =>
      numberedH264Fixture({
        ...top,
        width: even(top.width * k),
        height: even(top.height * k),
        kbps: Math.max(100, Math.round(top.kbps * k * k)),
      }),
    ),
  );
}

export interface Vp8Fixture {
  /** `profile` does not apply to VP8. */
  options: H264Options;
  frames: Vp8Frame[];
}

const vp8Cache = new Map<string, Promise<Vp8Fixture>>();

/**
 * VP8 (libvpx realtime, no alt-ref, error resilient: what a browser sends) of
 * the frame-numbered test picture, for viewers that cannot decode H.264 here
 * (Firefox). Same defaults as `numberedH264Fixture`.
 */
export function numberedVp8Fixture(opts: Partial<H264Options> = {}): Promise<Vp8Fixture> {
  const o = numberedOptions(opts);
  const key = JSON.stringify(o);
  let p = vp8Cache.get(key);
  if (!p) {
    p = (async () => {
      const gop = Math.max(1, Math.round(o.fps * o.keyframeInterval));
      const data = await cached('vp8-numbered-v1', o, (out) =>
        ffmpeg([
          ...testSource(o),
          ...['-vf', frameNumberFilter(o.width, o.height)],
          ...['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-threads', '2'],
          ...['-b:v', `${o.kbps}k`, '-minrate', `${o.kbps}k`, '-maxrate', `${o.kbps}k`],
          ...['-g', String(gop), '-keyint_min', String(gop), '-auto-alt-ref', '0', '-lag-in-frames', '0', '-error-resilient', '1'],
          ...['-f', 'ivf', out],
        ]),
      );
      const frames = ivfFrames(data).map((d) => ({ data: d, keyframe: isVp8Keyframe(d) }));
      if (!frames[0]?.keyframe) throw new Error('fixture does not start with a keyframe');
      return { options: o, frames };
    })();
    vp8Cache.set(key, p);
  }
  return p;
}

const ivfCache = new Map<string, Promise<Vp8Fixture>>();

/** Encoder arguments of the browser-like (realtime, no look-ahead) VP9 and AV1 fixtures. */
const ENCODERS = {
  vp9: (o: H264Options) => [
    ...['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1', '-threads', '2'],
    ...['-b:v', `${o.kbps}k`, '-minrate', `${o.kbps}k`, '-maxrate', `${o.kbps}k`],
    ...['-auto-alt-ref', '0', '-lag-in-frames', '0', '-error-resilient', '1'],
  ],
  av1: (o: H264Options) => [
    ...['-c:v', 'libaom-av1', '-usage', 'realtime', '-cpu-used', '8', '-row-mt', '1', '-threads', '2'],
    ...['-b:v', `${o.kbps}k`, '-lag-in-frames', '0'],
  ],
};

/**
 * VP9 (libvpx realtime, no alt-ref: what a browser sends) or AV1 (libaom
 * realtime; each frame an IVF temporal unit of OBUs with size fields, a
 * sequence header on every key frame) of the frame-numbered test picture.
 * Same defaults as `numberedH264Fixture`.
 */
export function numberedIvfFixture(codec: 'vp9' | 'av1', opts: Partial<H264Options> = {}): Promise<Vp8Fixture> {
  const o = numberedOptions(opts);
  const key = JSON.stringify([codec, o]);
  let p = ivfCache.get(key);
  if (!p) {
    p = (async () => {
      const gop = Math.max(1, Math.round(o.fps * o.keyframeInterval));
      const data = await cached(`${codec}-numbered-v1`, o, (out) =>
        ffmpeg([
          ...testSource(o),
          ...['-vf', frameNumberFilter(o.width, o.height)],
          ...ENCODERS[codec](o),
          ...['-g', String(gop), '-keyint_min', String(gop)],
          ...['-f', 'ivf', out],
        ]),
      );
      const isKey = codec === 'vp9' ? isVp9Keyframe : isAv1Keyframe;
      const frames = ivfFrames(data).map((d) => ({ data: d, keyframe: isKey(d) }));
      if (!frames[0]?.keyframe) throw new Error('fixture does not start with a keyframe');
      return { options: o, frames };
    })();
    ivfCache.set(key, p);
  }
  return p;
}

let opusCache: Promise<Uint8Array[]> | undefined;

/** 20 ms stereo Opus packets of a tone (4 s). */
export function opusFixture(): Promise<Uint8Array[]> {
  opusCache ??= (async () => {
    const params = { tone: 440, seconds: 4, kbps: 64 };
    const data = await cached('opus', params, async (out) => {
      const ogg = `${out}.ogg`;
      await ffmpeg([
        ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '4', '-ac', '2'],
        ...['-c:a', 'libopus', '-b:a', '64k', '-frame_duration', '20', '-application', 'lowdelay', '-f', 'ogg', ogg],
      ]);
      await rename(ogg, out);
    });
    const packets = opusPacketsFromOgg(data);
    if (packets.length < 100) throw new Error(`opus fixture too short (${packets.length} packets)`);
    return packets;
  })();
  return opusCache;
}
