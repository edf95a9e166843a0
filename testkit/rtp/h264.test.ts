import { describe, expect, it } from 'vitest';
import { h264Fixture, opusFixture } from '../media/fixtures.ts';
import {
  accessUnits,
  H264Depacketizer,
  NAL,
  nalType,
  packetizeH264,
  readStamp,
  splitAnnexB,
  stampSei,
  withStamp,
  type ReceivedFrame,
} from './h264.ts';
import { buildRtp, parseRtcp, parseRtp } from './packet.ts';

describe('RTP packets', () => {
  it('round-trips headers and one-byte extensions', () => {
    const ext = new Map([[3, Uint8Array.from([1, 2, 3])]]);
    const pkt = buildRtp(
      { payloadType: 96, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, marker: true, extensions: ext },
      Buffer.from('hi'),
    );
    const p = parseRtp(pkt)!;
    expect(p).toMatchObject({ payloadType: 96, sequenceNumber: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, marker: true });
    expect([...p.extensions!.get(3)!]).toEqual([1, 2, 3]);
    expect(Buffer.from(p.payload).toString()).toBe('hi');
  });

  it('reads PLI and NACK out of compound RTCP', () => {
    const pli = Buffer.from([0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 42]);
    const nack = Buffer.from([0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 42, 0, 10, 0, 5]);
    const r = parseRtcp(Buffer.concat([pli, nack]));
    expect(r.keyframeRequests).toEqual([42]);
    expect(r.nacks).toEqual([{ ssrc: 42, seqs: [10, 11, 13] }]);
    expect(parseRtp(pli)).toBeNull();
  });
});

describe('H.264', () => {
  it('stamps survive emulation prevention', () => {
    for (const captureUs of [0, 1, 0x0000_0300_0000, Date.now() * 1000]) {
      const sei = stampSei({ captureUs, frame: 0x00000003 });
      expect(nalType(sei)).toBe(NAL.SEI);
      // No start code can appear inside the NAL.
      expect(Buffer.from(sei).includes(Buffer.from([0, 0, 1]))).toBe(false);
      expect(readStamp(sei)).toEqual({ captureUs, frame: 3 });
    }
  });

  it('encodes an OBS-like fixture: keyframes with SPS/PPS at the interval asked', async () => {
    const { frames } = await h264Fixture({ seconds: 2, keyframeInterval: 1, fps: 30 });
    expect(frames.length).toBe(60);
    const keyIdx = frames.flatMap((f, i) => (f.keyframe ? [i] : []));
    expect(keyIdx).toEqual([0, 30]);
    for (const i of keyIdx) expect(frames[i]!.nals.map(nalType)).toEqual(expect.arrayContaining([NAL.SPS, NAL.PPS, NAL.IDR]));
  });

  it('packetizes and depacketizes frames bit-exactly, stamps included', async () => {
    const { frames } = await h264Fixture({ seconds: 2 });
    const got: ReceivedFrame[] = [];
    const depack = new H264Depacketizer((f) => got.push(f));
    let seq = 65000;
    frames.forEach((frame, i) => {
      const nals = withStamp(frame.nals, { captureUs: 1_000_000 + i, frame: i });
      const payloads = packetizeH264(nals, 1200);
      payloads.forEach((p, j) => {
        expect(p.length).toBeLessThanOrEqual(1200);
        depack.push(p, i * 3000, seq++ & 0xffff, j === payloads.length - 1);
      });
    });
    expect(got.length).toBe(frames.length);
    got.forEach((f, i) => {
      expect(f.stamp).toEqual({ captureUs: 1_000_000 + i, frame: i });
      expect(f.incomplete).toBe(false);
      expect(f.keyframe).toBe(frames[i]!.keyframe);
      if (f.keyframe) expect(f.decodable).toBe(true);
      const sent = withStamp(frames[i]!.nals, { captureUs: 1_000_000 + i, frame: i });
      expect(Buffer.concat(f.nals.map((n) => Buffer.from(n)))).toEqual(Buffer.concat(sent.map((n) => Buffer.from(n))));
    });
    // Annex-B re-split of what we'd write back is stable.
    expect(
      accessUnits(splitAnnexB(Buffer.concat(frames[0]!.nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), Buffer.from(n)])))),
    ).toHaveLength(1);
  });

  it('flags a frame with a lost packet as incomplete', async () => {
    const { frames } = await h264Fixture({ seconds: 2 });
    const got: ReceivedFrame[] = [];
    const depack = new H264Depacketizer((f) => got.push(f));
    const payloads = packetizeH264(frames[0]!.nals, 1200);
    expect(payloads.length).toBeGreaterThan(3);
    payloads.forEach((p, j) => j !== 2 && depack.push(p, 0, j, j === payloads.length - 1));
    expect(got[0]?.incomplete).toBe(true);
  });

  it('makes 20 ms Opus packets', async () => {
    const packets = await opusFixture();
    expect(packets.length).toBeGreaterThanOrEqual(199);
    // TOC byte (RFC 6716): low-delay mode is CELT (configs 16–31), 20 ms frames are configs ≡ 3 (mod 4), stereo bit set.
    const toc = packets[10]![0]!;
    expect(toc >> 3).toBeGreaterThanOrEqual(16);
    expect((toc >> 3) % 4).toBe(3);
    expect(toc & 0x04).toBe(0x04);
  });
});
