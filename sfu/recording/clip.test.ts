/**
 * Clips cut from a real DVR buffer filled with a program's packets (ffmpeg
 * fixtures, 720p 2.5 Mbit/s H.264 + Opus): fast enough for 60 s, the right
 * frames (read back from the frame numbers stamped into the video), a file
 * with its index first that ffprobe and ffmpeg read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findStamp, framesOfFile, splitAnnexB } from '@whipcast/testkit';
import { ALL_FORMATS, BufferSource, EncodedPacketSink, Input } from 'mediabunny';
import { afterAll, describe, expect, it } from 'vitest';
import { DvrBuffer } from '../dvr/buffer.ts';
import { isKeyframeStart } from '../dvr/keyframe.ts';
import { ClipError, makeClip } from './clip.ts';
import { avccToAnnexB } from './h264.ts';
import { decodeErrors, ffprobe, mediaEnd, programFeed, topLevelBoxes, type ProgramFeed } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'whipcast-clip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const H264 = { mimeType: 'video/H264', clockRate: 90000 };
const VP8 = { mimeType: 'video/VP8', clockRate: 90000 };
const OPUS = { mimeType: 'audio/opus', clockRate: 48000, channels: 2 };

function dvrOf(feed: ProgramFeed, codec: 'h264' | 'vp8' | 'vp9' | 'av1'): DvrBuffer {
  const dvr = new DvrBuffer({ windowMs: 120_000, maxBytes: 256 << 20 });
  for (const p of feed.packets) {
    dvr.push({
      at: p.info.arrivalMs,
      kind: p.info.kind,
      keyframe: p.info.kind === 'video' && isKeyframeStart(codec, p.packet),
      data: p.packet,
    });
  }
  return dvr;
}

/** Stamped frame numbers of the clip's video, in order. */
async function clipFrames(data: Buffer): Promise<number[]> {
  const input = new Input({ source: new BufferSource(data), formats: ALL_FORMATS });
  try {
    const out: number[] = [];
    for await (const p of new EncodedPacketSink((await input.getPrimaryVideoTrack())!).packets()) {
      out.push(findStamp(splitAnnexB(avccToAnnexB(p.data)))!.frame);
    }
    return out;
  } finally {
    input.dispose();
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('makeClip', () => {
  it('cuts 60 s of 720p 2.5 Mbit/s H.264 + Opus in under 2 s, moov first, both tracks, clean decode', async () => {
    const feed = await programFeed({ seconds: 70, video: 'h264', h264: { width: 1280, height: 720, kbps: 2500, seconds: 10 } });
    const dvr = dvrOf(feed, 'h264');
    const t0 = performance.now();
    const clip = await makeClip(dvr, { durationS: 60, video: H264, audio: OPUS });
    const ms = performance.now() - t0;
    console.log(`60 s clip of 720p 2.5 Mbit/s: ${ms.toFixed(0)} ms, ${(clip.data.length / 1e6).toFixed(1)} MB`);
    expect(ms).toBeLessThan(2000);
    expect(clip).toMatchObject({ container: 'mp4', mimeType: 'video/mp4' });
    const boxes = topLevelBoxes(clip.data);
    expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
    expect(boxes).not.toContain('moof');
    const path = join(dir, 'clip60.mp4');
    writeFileSync(path, clip.data);
    const probe = await ffprobe(path);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['h264', 'opus']);
    expect(probe.streams.find((s) => s.codec_name === 'h264')).toMatchObject({ width: 1280, height: 720 });
    // starts at the keyframe at or before 60 s from the end (keyframes every 1 s)
    expect(Number(probe.format.duration)).toBeGreaterThanOrEqual(59.9);
    expect(Number(probe.format.duration)).toBeLessThanOrEqual(61.1);
    expect(await decodeErrors(path)).toBe('');
    dvr.close();
  }, 120_000);

  it('the last 10 s holds exactly the frames live in those 10 s (from the keyframe before), and a clip behind live ends where asked', async () => {
    const feed = await programFeed({ seconds: 30, video: 'h264' });
    const dvr = dvrOf(feed, 'h264');
    const clip = await makeClip(dvr, { durationS: 10, video: H264, audio: OPUS });
    // the buffer ends at 29.98 s (last audio packet): frames 600–899 were live in the last 10 s; the keyframe before is 570
    expect(await clipFrames(clip.data)).toEqual(range(570, 899));
    expect(clip.startMs).toBe(feed.frames[570]!.arrivalMs);

    const behind = await makeClip(dvr, { durationS: 5, endOffsetMs: 12_000, video: H264, audio: OPUS });
    // ends at 29.98 − 12 = 17.98 s → frame 539; starts at the keyframe at or before 12.98 s → 360
    expect(await clipFrames(behind.data)).toEqual(range(360, 539));
    const path = join(dir, 'behind.mp4');
    writeFileSync(path, behind.data);
    expect(Math.abs((await mediaEnd(path)) - (539 - 360 + 1) / 30)).toBeLessThan(0.1);
    expect(await decodeErrors(path)).toBe('');
    dvr.close();
  });

  it('frame-numbered picture: decoding a clip of the last 10 s shows the frames live in those 10 s', async () => {
    const feed = await programFeed({ seconds: 30, video: 'h264', numbered: true });
    const dvr = dvrOf(feed, 'h264');
    const clip = await makeClip(dvr, { durationS: 10, video: H264, audio: OPUS });
    const path = join(dir, 'numbered-clip.mp4');
    writeFileSync(path, clip.data);
    // live in the last 10 s: frames 600–899; the clip starts at the keyframe before (570)
    expect(await framesOfFile(path)).toEqual(range(570, 899));
    dvr.close();
  }, 120_000);

  it('VP8 clips are WebM', async () => {
    const feed = await programFeed({ seconds: 12, video: 'vp8' });
    const dvr = dvrOf(feed, 'vp8');
    const clip = await makeClip(dvr, { durationS: 5, video: VP8, audio: OPUS });
    expect(clip.mimeType).toBe('video/webm');
    const path = join(dir, 'clip.webm');
    writeFileSync(path, clip.data);
    const probe = await ffprobe(path, true);
    expect(probe.streams.map((s) => s.codec_name).sort()).toEqual(['opus', 'vp8']);
    expect(Number(probe.format.duration)).toBeGreaterThanOrEqual(4.9);
    expect(Number(probe.format.duration)).toBeLessThanOrEqual(6.1);
    expect(await decodeErrors(path)).toBe('');
    dvr.close();
  });

  for (const [codec, mimeType] of [
    ['vp9', 'video/VP9'],
    ['av1', 'video/AV1'],
  ] as const) {
    it(`${codec.toUpperCase()} clips are MP4 (moov first) holding the frames live in the last 5 s, from the keyframe before`, async () => {
      const feed = await programFeed({ seconds: 12, video: codec });
      const dvr = dvrOf(feed, codec);
      const clip = await makeClip(dvr, { durationS: 5, video: { mimeType, clockRate: 90000 }, audio: OPUS });
      expect(clip.mimeType).toBe('video/mp4');
      const path = join(dir, `clip-${codec}.mp4`);
      writeFileSync(path, clip.data);
      const boxes = topLevelBoxes(clip.data);
      expect(boxes.indexOf('moov')).toBeLessThan(boxes.indexOf('mdat'));
      expect((await ffprobe(path)).streams.map((s) => s.codec_name).sort()).toEqual([codec, 'opus'].sort());
      expect(await decodeErrors(path)).toBe('');
      // the newest packet is frame 359's; 5 s before it is frame 209.x, the keyframe before is 180
      expect(await framesOfFile(path)).toEqual(range(180, 359));
      dvr.close();
    });
  }

  it('refuses bad requests and an empty buffer with a ClipError', async () => {
    const empty = new DvrBuffer({ windowMs: 10_000, maxBytes: 1 << 20 });
    await expect(makeClip(empty, { durationS: 10, video: H264 })).rejects.toMatchObject({ name: 'ClipError', reason: 'empty' });
    const feed = await programFeed({ seconds: 6, video: 'h264' });
    const dvr = dvrOf(feed, 'h264');
    await expect(makeClip(dvr, { durationS: 3, video: H264 })).rejects.toBeInstanceOf(ClipError);
    await expect(makeClip(dvr, { durationS: 61, video: H264 })).rejects.toMatchObject({ reason: 'invalid' });
    await expect(makeClip(dvr, { durationS: 5, endOffsetMs: 60_000, video: H264 })).rejects.toMatchObject({ reason: 'empty' });
    await expect(makeClip(dvr, { durationS: 5, video: { mimeType: 'video/H265', clockRate: 90000 } })).rejects.toMatchObject({
      reason: 'unsupported',
    });
    // video only is fine
    const clip = await makeClip(dvr, { durationS: 5, video: H264 });
    expect(clip.data.length).toBeGreaterThan(0);
    dvr.close();
  });
});
