/**
 * The AV1 depacketizer on real AV1 (libaom realtime, the frame-numbered
 * picture) packetized as the AV1 RTP spec allows: W counting elements or
 * length fields on all, OBUs with or without their size field, fragments
 * across packets. Temporal units come back as the encoder's minus the
 * temporal delimiter, key frames and the sequence header's size and codec
 * string are found, loss drops everything up to the next key frame.
 */
import { av1Obus, buildRtp, framesOfFile, numberedIvfFixture, packetizeAv1, type Av1PacketizeOptions } from '@whipcast/testkit';
import { describe, expect, it } from 'vitest';
import { av1CodecString, Av1Depacketizer, parseAv1SequenceHeader } from './av1.ts';
import { ivfFrame, ivfHeader } from './ivf.ts';
import { programFeed, type FeedPacket } from './testing.ts';
import type { CodedFrame } from './types.ts';

const feedOf = (packets: FeedPacket[], d = new Av1Depacketizer()): CodedFrame[] =>
  packets.flatMap((p) => d.push(p.packet, p.info.arrivalMs));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => a + k);
/** A temporal unit without its temporal delimiter: what a file sample holds. */
const withoutTd = (tu: Uint8Array) => Buffer.concat(av1Obus(tu).flatMap((o) => (o.type === 2 ? [] : [o.data])));

async function numbers(frames: CodedFrame[]): Promise<(number | null)[]> {
  const ivf = Buffer.concat([ivfHeader(640, 360, 30, frames.length, 'av1'), ...frames.map((f, k) => ivfFrame(f.data, k))]);
  return framesOfFile(ivf, { inputFormat: 'ivf', width: 640, height: 360 });
}

/** Packets of fixture frames [0, n) packetized with `opts`, one timestamp per frame. */
async function packets(n: number, opts: Av1PacketizeOptions): Promise<Buffer[]> {
  const fx = await numberedIvfFixture('av1', { seconds: 40 });
  let seq = 65000; // wraps
  return fx.frames.slice(0, n).flatMap((f, i) => {
    const payloads = packetizeAv1(f.data, opts);
    return payloads.map((p, k) =>
      buildRtp({ payloadType: 45, sequenceNumber: seq++ & 0xffff, timestamp: i * 3000, ssrc: 9, marker: k === payloads.length - 1 }, p),
    );
  });
}

describe('AV1 depacketizer', () => {
  it('gives back the encoder’s temporal units (minus the temporal delimiter), key frames, size and codec string', async () => {
    const feed = await programFeed({ seconds: 3, video: 'av1', audio: false });
    const fx = await numberedIvfFixture('av1', { seconds: 40 });
    const d = new Av1Depacketizer();
    const frames = feedOf(feed.packets, d);
    expect(d.stats).toEqual({ frames: 90, droppedFrames: 0, lostPackets: 0 });
    frames.forEach((f, i) => expect(Buffer.from(f.data).equals(withoutTd(fx.frames[i]!.data))).toBe(true));
    expect(frames.flatMap((f, i) => (f.keyframe ? [i] : []))).toEqual([0, 30, 60]);
    expect(frames[0]!.config).toEqual({
      codec: 'av1',
      width: 640,
      height: 360,
      codecString: expect.stringMatching(/^av01\.0\.\d\dM\.08$/),
    });
    expect(frames.filter((f) => f.config)).toHaveLength(1);
    expect(await numbers(frames)).toEqual(range(0, 89));
  });

  it('reads every packetization the spec allows: length fields on all elements, OBU size fields kept, small packets', async () => {
    const fx = await numberedIvfFixture('av1', { seconds: 40 });
    const expected = fx.frames.slice(0, 35).map((f) => withoutTd(f.data));
    for (const opts of [
      { lengthFields: 'always' },
      { keepSizeFields: true },
      { mtu: 300 },
      { mtu: 300, lengthFields: 'always', keepSizeFields: true },
    ] as const) {
      const d = new Av1Depacketizer();
      const got = (await packets(35, opts)).flatMap((p, k) => d.push(p, k));
      expect(
        got.map((f) => Buffer.from(f.data).toString('hex')),
        JSON.stringify(opts),
      ).toEqual(expected.map((e) => e.toString('hex')));
      expect(got.flatMap((f, i) => (f.keyframe ? [i] : []))).toEqual([0, 30]);
    }
  });

  it('a lost packet drops its temporal unit and every one up to the next key frame; so does a whole lost one', async () => {
    const feed = await programFeed({ seconds: 3, video: 'av1', audio: false });
    const at = (n: number) => feed.frames[n]!.arrivalMs;
    const one = feed.packets.findIndex((p) => p.info.arrivalMs === at(45));
    const d1 = new Av1Depacketizer({ maxWaitMs: 100 });
    expect(
      await numbers(
        feedOf(
          feed.packets.filter((_, k) => k !== one),
          d1,
        ),
      ),
    ).toEqual([...range(0, 44), ...range(60, 89)]);
    expect(d1.stats).toMatchObject({ lostPackets: 1, droppedFrames: 15 });
    const kept = feedOf(
      feed.packets.filter((p) => p.info.arrivalMs !== at(45)),
      new Av1Depacketizer({ maxWaitMs: 100 }),
    );
    expect(await numbers(kept)).toEqual([...range(0, 44), ...range(60, 89)]);
    // losing the middle packet of a fragmented key frame
    const key = feed.packets.findIndex((p) => p.info.arrivalMs === at(30));
    const lostKey = feedOf(
      feed.packets.filter((_, k) => k !== key + 2),
      new Av1Depacketizer({ maxWaitMs: 100 }),
    );
    expect(await numbers(lostKey)).toEqual([...range(0, 29), ...range(60, 89)]);
    // joining mid-way waits for the key frame
    expect(await numbers(feedOf(feed.packets.filter((p) => p.info.arrivalMs >= at(10))))).toEqual(range(30, 89));
  });

  it('malformed payloads are loss, not exceptions', () => {
    const rtp = (payload: Uint8Array, seq: number, marker = true) =>
      buildRtp({ payloadType: 45, sequenceNumber: seq, timestamp: seq * 3000, ssrc: 9, marker }, payload);
    for (const bad of [
      Uint8Array.of(), // no aggregation header
      Uint8Array.of(0x80, 0x30, 0x00), // Z on the first packet of a temporal unit
      Uint8Array.of(0x00, 0x05, 0x30), // length beyond the payload
      Uint8Array.of(0x20, 0x01, 0x30), // W = 2, one element
      Uint8Array.of(0x10, 0xb0, 0x00), // forbidden bit
      Uint8Array.of(0x10, 0x12, 0x05, 0x00), // OBU size field beyond the element
    ]) {
      const d = new Av1Depacketizer();
      expect(d.push(rtp(bad, 1), 0)).toEqual([]);
    }
  });

  it('parses sequence headers into codec strings', async () => {
    const fx = await numberedIvfFixture('av1', { seconds: 40 });
    const seq = av1Obus(fx.frames[0]!.data).find((o) => o.type === 1)!.data;
    const parsed = parseAv1SequenceHeader(seq.subarray(2))!; // 1-byte header, 1-byte size
    expect(parsed).toMatchObject({ profile: 0, bitDepth: 8, width: 640, height: 360, monochrome: false, subsamplingX: 1, subsamplingY: 1 });
    const base = { ...parsed, level: 8, tier: 0, colorPrimaries: 2, transferCharacteristics: 2, matrixCoefficients: 2, fullRange: false };
    expect(av1CodecString(base)).toBe('av01.0.08M.08');
    expect(
      av1CodecString({ ...base, level: 13, tier: 1, bitDepth: 10, colorPrimaries: 9, transferCharacteristics: 16, matrixCoefficients: 9 }),
    ).toBe('av01.0.13H.10.0.110.09.16.09.0');
  });
});
