/**
 * The frame-number pattern read back from the real fixtures after a lossy
 * encode and decode, at full size and scaled down; and never read where there is none.
 */
import { describe, expect, it } from 'vitest';
import { joinAnnexB } from '../rtp/h264.ts';
import { decodeRgba, framesOfFile } from './decode.ts';
import { h264Fixture, numberedH264Fixture, numberedLayerFixtures, numberedVp8Fixture } from './fixtures.ts';
import { MAX_FRAME_NUMBER, readFrameNumber } from './frame-number.ts';

const FRAMES = 450; // 15 s: covers numbers with bits up to 2^8 set, and many GOPs

describe('frame-numbered fixtures', () => {
  it('H.264: every decoded frame shows its index, at full size and scaled to a quarter', { timeout: 120_000 }, async () => {
    const f = await numberedH264Fixture();
    expect(f.frames.length).toBe(f.options.fps * f.options.seconds);
    expect(f.options.seconds).toBeGreaterThanOrEqual(120);
    const data = joinAnnexB(f.frames.flatMap((au) => au.nals));
    const expected = Array.from({ length: FRAMES }, (_, i) => i);
    for (const [width, height] of [
      [640, 360],
      [160, 90],
      [213, 120],
    ] as const) {
      const read = await framesOfFile(data, { inputFormat: 'h264', width, height, maxFrames: FRAMES });
      expect(read, `${width}x${height}`).toEqual(expected);
    }
    // The last frames too (the numbers do not wrap inside the fixture).
    const tail = await framesOfFile(data, { inputFormat: 'h264', width: 320, height: 180 });
    expect(tail.length).toBe(f.frames.length);
    expect(tail.slice(-3)).toEqual([f.frames.length - 3, f.frames.length - 2, f.frames.length - 1]);
  });

  it('VP8: every decoded frame shows its index', { timeout: 300_000 }, async () => {
    const f = await numberedVp8Fixture();
    expect(f.frames.filter((fr) => fr.keyframe).length).toBe(f.options.seconds / f.options.keyframeInterval);
    const ivf = Buffer.alloc(32);
    ivf.write('DKIF', 0, 'latin1');
    ivf.writeUInt16LE(32, 6);
    ivf.write('VP80', 8, 'latin1');
    ivf.writeUInt16LE(f.options.width, 12);
    ivf.writeUInt16LE(f.options.height, 14);
    ivf.writeUInt32LE(f.options.fps, 16);
    ivf.writeUInt32LE(1, 20);
    ivf.writeUInt32LE(f.frames.length, 24);
    const parts = [ivf];
    f.frames.forEach((fr, i) => {
      const h = Buffer.alloc(12);
      h.writeUInt32LE(fr.data.length, 0);
      h.writeUInt32LE(i, 4);
      parts.push(h, Buffer.from(fr.data));
    });
    const read = await framesOfFile(Buffer.concat(parts), { inputFormat: 'ivf', width: 320, height: 180, maxFrames: FRAMES });
    expect(read).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
  });

  it('simulcast layers: every layer shows the same numbers, keyframes at the same frames', { timeout: 120_000 }, async () => {
    const layers = await numberedLayerFixtures();
    expect(layers.map((l) => `${l.options.width}x${l.options.height}@${l.options.kbps}`)).toEqual([
      '640x360@1000',
      '320x180@250',
      '160x90@100',
    ]);
    const keyframes = (l: (typeof layers)[number]) => l.frames.flatMap((f, i) => (f.keyframe ? [i] : []));
    for (const layer of layers) {
      expect(layer.frames.length).toBe(layers[0]!.frames.length);
      expect(keyframes(layer)).toEqual(keyframes(layers[0]!));
      const { width, height } = layer.options;
      const read = await framesOfFile(joinAnnexB(layer.frames.flatMap((au) => au.nals)), {
        inputFormat: 'h264',
        width,
        height,
        maxFrames: 120,
      });
      expect(read, `${width}x${height}`).toEqual(Array.from({ length: 120 }, (_, i) => i));
    }
  });

  it('reads no number from a picture without the pattern', { timeout: 60_000 }, async () => {
    const f = await h264Fixture();
    const read = await framesOfFile(joinAnnexB(f.frames.flatMap((au) => au.nals)), { inputFormat: 'h264', width: 640, height: 360 });
    expect(read.length).toBe(f.frames.length);
    expect(read.every((n) => n === null)).toBe(true);
  });

  it('refuses a damaged pattern: a flipped bit breaks the parity, a grey cell is not a bit', { timeout: 60_000 }, async () => {
    const f = await numberedH264Fixture();
    const data = joinAnnexB(f.frames.slice(0, 60).flatMap((au) => au.nals));
    const w = 250;
    const h = 100; // not 16:9: the reader works in fractions of the picture
    let checked = 0;
    await decodeRgba(data, { inputFormat: 'h264', width: w, height: h, maxFrames: 60 }, (rgba, _w, _h, i) => {
      expect(readFrameNumber(rgba, w, h)).toBe(i);
      const copy = Uint8Array.from(rgba);
      const paint = (cell: number, value: number) => {
        for (let y = 0; y < 12; y++)
          for (let x = cell * 10; x < cell * 10 + 10; x++) copy.fill(value, (y * w + x) * 4, (y * w + x) * 4 + 3);
      };
      paint(21, copy[(5 * w + 215) * 4]! > 128 ? 0 : 255); // flip bit 0 (cell 21 of 25)
      expect(readFrameNumber(copy, w, h)).toBeNull();
      paint(21, 128);
      expect(readFrameNumber(copy, w, h)).toBeNull();
      checked++;
    });
    expect(checked).toBe(60);
  });

  it('carries 20 bits', () => {
    expect(MAX_FRAME_NUMBER).toBe(1_048_575);
    expect(readFrameNumber(new Uint8Array(4 * 100 * 100), 100, 100)).toBeNull();
  });
});
