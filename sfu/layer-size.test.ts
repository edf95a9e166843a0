/** Picture sizes read off RTP packets (what players name simulcast layers by), from real encoder output. */
import { buildRtp, h264Fixture, numberedVp8Fixture, packetizeH264, packetizeVp8 } from '@whipcast/testkit';
import { describe, expect, it } from 'vitest';
import { pictureSize } from './layer-size.ts';

const rtp = (payload: Uint8Array, extensions?: Map<number, Uint8Array>) =>
  buildRtp({ payloadType: 96, sequenceNumber: 1, timestamp: 1, ssrc: 1, marker: false, ...(extensions ? { extensions } : {}) }, payload);

describe('pictureSize', () => {
  it('reads H.264 sizes from the SPS that starts each keyframe, and nothing from other packets', async () => {
    for (const [width, height] of [
      [1280, 720],
      [640, 360],
      [320, 180],
    ] as const) {
      const f = await h264Fixture({ width, height, seconds: 1 });
      const key = packetizeH264(f.frames[0]!.nals).map((p) => pictureSize('video/H264', rtp(p, new Map([[2, Buffer.from('0')]]))));
      expect(key.find((s) => s !== null)).toEqual({ width, height });
      const delta = packetizeH264(f.frames[1]!.nals).map((p) => pictureSize('video/H264', rtp(p)));
      expect(delta.every((s) => s === null)).toBe(true);
    }
  });

  it('reads VP8 sizes from keyframe headers', async () => {
    const f = await numberedVp8Fixture({ width: 320, height: 180, seconds: 1 });
    const key = packetizeVp8(f.frames[0]!.data, 1).map((p) => pictureSize('video/VP8', rtp(p)));
    expect(key[0]).toEqual({ width: 320, height: 180 });
    expect(key.slice(1).every((s) => s === null)).toBe(true);
    const delta = packetizeVp8(f.frames[1]!.data, 2).map((p) => pictureSize('video/VP8', rtp(p)));
    expect(delta.every((s) => s === null)).toBe(true);
    expect(pictureSize('audio/opus', rtp(Uint8Array.from([1, 2, 3])))).toBeNull();
  });
});
