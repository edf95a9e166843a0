/**
 * Thumbnails from a real DVR buffer: the newest keyframe decoded by ffmpeg to
 * a JPEG/WebP of the asked width showing that frame; every failure an error
 * result, not an exception.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { framesOfFile } from '@whipcast/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { DvrBuffer } from '../dvr/buffer.ts';
import { isKeyframeStart } from '../dvr/keyframe.ts';
import { ffmpeg, ffprobe, programFeed } from './testing.ts';
import { stopProgramHelper } from './spawner.ts';
import { thumbnailFromDvr } from './thumbnail.ts';

const dir = mkdtempSync(join(tmpdir(), 'whipcast-thumb-'));
afterAll(() => {
  stopProgramHelper();
  rmSync(dir, { recursive: true, force: true });
});

const H264 = { mimeType: 'video/H264', clockRate: 90000 };
const VP8 = { mimeType: 'video/VP8', clockRate: 90000 };

async function dvrWith(codec: 'h264' | 'vp8' | 'vp9' | 'av1', seconds = 3.5): Promise<DvrBuffer> {
  const feed = await programFeed({ seconds, video: codec });
  const dvr = new DvrBuffer({ windowMs: 60_000, maxBytes: 64 << 20 });
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

/** Mean absolute difference per byte between two raw RGB images of the same size. */
async function rgb(path: string, width: number, height: number): Promise<Buffer> {
  const out = join(dir, `${Math.random()}.rgb`);
  await ffmpeg(['-v', 'error', '-i', path, '-vf', `scale=${width}:${height}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', out]);
  const { readFileSync } = await import('node:fs');
  return readFileSync(out);
}

describe('thumbnailFromDvr', () => {
  it('decodes the newest H.264 keyframe to a 480 px JPEG showing that frame', async () => {
    const dvr = await dvrWith('h264');
    const result = await thumbnailFromDvr(dvr, H264, { width: 480 });
    if (!result.ok) throw new Error(result.error);
    expect(result.mimeType).toBe('image/jpeg');
    expect(result.image.subarray(0, 2).toString('hex')).toBe('ffd8');
    const jpeg = join(dir, 'thumb.jpg');
    writeFileSync(jpeg, result.image);
    expect((await ffprobe(jpeg)).streams[0]).toMatchObject({ width: 480, height: 270 });
    // it is frame 90 (the keyframe at 3 s): compare with ffmpeg's own rendering of frames 90 and 0 of the source
    const reference = join(dir, 'ref.png');
    const other = join(dir, 'other.png');
    await ffmpeg([
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-vf',
      'select=eq(n\\,90)',
      '-frames:v',
      '1',
      reference,
    ]);
    await ffmpeg([
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-vf',
      'select=eq(n\\,45)',
      '-frames:v',
      '1',
      other,
    ]);
    const [t, r, o] = await Promise.all([rgb(jpeg, 160, 90), rgb(reference, 160, 90), rgb(other, 160, 90)]);
    const diff = (a: Buffer, b: Buffer) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;
    expect(diff(t, r)).toBeLessThan(12);
    expect(diff(t, o)).toBeGreaterThan(diff(t, r) * 1.5);
    dvr.close();
  });

  it('VP8 to WebP', async () => {
    const dvr = await dvrWith('vp8');
    const result = await thumbnailFromDvr(dvr, VP8, { width: 320, format: 'webp' });
    if (!result.ok) throw new Error(result.error);
    expect(result.mimeType).toBe('image/webp');
    expect(result.image.subarray(8, 12).toString('latin1')).toBe('WEBP');
    const webp = join(dir, 'thumb.webp');
    writeFileSync(webp, result.image);
    expect((await ffprobe(webp)).streams[0]).toMatchObject({ width: 320, height: 180 });
    dvr.close();
  });

  for (const [codec, mimeType] of [
    ['vp9', 'video/VP9'],
    ['av1', 'video/AV1'],
  ] as const) {
    it(`${codec.toUpperCase()}: the picture is the newest keyframe (its frame number read off the JPEG)`, async () => {
      const dvr = await dvrWith(codec);
      const result = await thumbnailFromDvr(dvr, { mimeType, clockRate: 90000 }, { width: 640 });
      if (!result.ok) throw new Error(result.error);
      expect(result.mimeType).toBe('image/jpeg');
      const jpeg = join(dir, `thumb-${codec}.jpg`);
      writeFileSync(jpeg, result.image);
      expect((await ffprobe(jpeg)).streams[0]).toMatchObject({ width: 640, height: 360 });
      expect(await framesOfFile(jpeg)).toEqual([90]); // the keyframe at 3 s
      dvr.close();
    });
  }

  it('failures are results: nothing buffered, no ffmpeg, a hung decoder, an unsupported codec', async () => {
    const empty = new DvrBuffer({ windowMs: 10_000, maxBytes: 1 << 20 });
    expect(await thumbnailFromDvr(empty, H264)).toEqual({ ok: false, error: 'no keyframe buffered yet' });
    const dvr = await dvrWith('h264', 1.5);
    expect(await thumbnailFromDvr(dvr, H264, { ffmpegPath: join(dir, 'no-such-ffmpeg') })).toMatchObject({
      ok: false,
      error: expect.stringContaining('could not start'),
    });
    const hang = join(dir, 'hang.sh');
    writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(hang, 0o755);
    const t0 = Date.now();
    expect(await thumbnailFromDvr(dvr, H264, { ffmpegPath: hang, timeoutMs: 300 })).toMatchObject({
      ok: false,
      error: expect.stringContaining('timed out'),
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await thumbnailFromDvr(dvr, { mimeType: 'video/H265', clockRate: 90000 })).toMatchObject({ ok: false });
    dvr.close();
  });

  it("does not hold the caller's event loop while ffmpeg starts, however much memory the caller holds", { timeout: 60_000 }, async () => {
    const dvr = await dvrWith('h264', 1.5);
    await thumbnailFromDvr(dvr, H264); // the helper process starts while this process is small
    // what a server holding ten minutes of DVR buffer for ten channels has resident
    const held: Buffer[] = [];
    for (let i = 0; i < 2048; i++) held.push(Buffer.alloc(1 << 20, i));
    // Time the event loop spent busy (not waiting for I/O) over five pictures: a fork of this process (2 GB
    // resident) keeps it busy ~120 ms each on the reference VM; through the helper, a few ms in all. Busy time,
    // unlike the loop's delay, does not grow when other processes take the core while this one waits.
    const before = performance.eventLoopUtilization();
    for (let i = 0; i < 5; i++) {
      const result = await thumbnailFromDvr(dvr, H264);
      expect(result.ok).toBe(true);
    }
    const busyMs = performance.eventLoopUtilization(before).active;
    expect(busyMs).toBeLessThan(250);
    expect(held.length).toBe(2048);
    dvr.close();
  });
});
