/**
 * Depacketizers on real encoded media (ffmpeg fixtures packetized as the
 * program delivers them): frames come back byte-exact, keyframes and stream
 * configuration are found, reordering is undone, and loss drops exactly the
 * damaged frame and what depends on it.
 */
import { accessUnits, findStamp, h264Fixture, splitAnnexB } from '@whipcast/testkit';
import { describe, expect, it } from 'vitest';
import { avcC, avccToAnnexB, H264Depacketizer, parseSps } from './h264.ts';
import { OpusDepacketizer } from './opus.ts';
import { parseRtpHeader } from './rtp.ts';
import { programFeed, type FeedPacket } from './testing.ts';
import type { CodedFrame } from './types.ts';
import { Vp8Depacketizer } from './vp8.ts';

function run(d: { push(p: Uint8Array, at: number): CodedFrame[] }, packets: FeedPacket[]): CodedFrame[] {
  return packets.flatMap((p) => d.push(p.packet, p.info.arrivalMs));
}

const frameNumber = (f: CodedFrame) => findStamp(splitAnnexB(avccToAnnexB(f.data)))?.frame;
const seqOf = (p: FeedPacket) => parseRtpHeader(p.packet)!.sequenceNumber;

describe('H.264 depacketizer', () => {
  it('reassembles single NAL, STAP-A and FU-A packets into the encoder’s access units', async () => {
    const feed = await programFeed({ seconds: 3, video: 'h264', audio: false });
    const fx = await h264Fixture({});
    const d = new H264Depacketizer();
    const frames = run(d, feed.packets);
    expect(frames).toHaveLength(90);
    expect(d.stats).toEqual({ frames: 90, droppedFrames: 0, lostPackets: 0 });
    for (const [i, f] of frames.entries()) {
      expect(frameNumber(f)).toBe(i);
      const original = fx.frames[i % fx.frames.length]!;
      expect(f.keyframe).toBe(original.keyframe);
      // same NAL units (plus the test's SEI stamp), AVCC-framed
      const nals = accessUnits(splitAnnexB(avccToAnnexB(f.data)))[0]!.nals.filter((n) => (n[0]! & 0x1f) !== 6);
      expect(nals.map((n) => Buffer.from(n).toString('hex'))).toEqual(
        original.nals.filter((n) => (n[0]! & 0x1f) !== 6).map((n) => Buffer.from(n).toString('hex')),
      );
    }
    expect(frames[0]!.config).toMatchObject({ codec: 'h264', width: 640, height: 360, codecString: expect.stringMatching(/^avc1\.42/) });
    expect(frames.filter((f) => f.config)).toHaveLength(1); // the same SPS again is not a new config
  });

  it('undoes reordering (a late retransmission still completes its frame)', async () => {
    const feed = await programFeed({ seconds: 1, video: 'h264', audio: false });
    const packets = [...feed.packets];
    // move a packet from the middle of frame 5 three packets later, as a NACKed retransmission arrives
    const i = packets.findIndex((p, k) => k > 20 && !parseRtpHeader(p.packet)!.marker);
    const [late] = packets.splice(i, 1);
    packets.splice(i + 3, 0, late!);
    const d = new H264Depacketizer();
    expect(run(d, packets)).toHaveLength(30);
    expect(d.stats.lostPackets).toBe(0);
  });

  it('drops a frame that lost a packet and every delta frame after it until the next keyframe', async () => {
    const feed = await programFeed({ seconds: 3, video: 'h264', audio: false });
    // lose one packet of frame 40 (keyframes at 0, 30, 60)
    const victim = feed.packets.findIndex((p) => p.info.arrivalMs === feed.frames[40]!.arrivalMs);
    const lost = feed.packets.filter((_, k) => k !== victim);
    const d = new H264Depacketizer({ maxWaitMs: 100 });
    const frames = run(d, lost);
    const numbers = frames.map(frameNumber);
    expect(numbers).toEqual([...Array.from({ length: 40 }, (_, n) => n), ...Array.from({ length: 30 }, (_, n) => 60 + n)]);
    expect(d.stats.lostPackets).toBe(1);
    expect(d.stats.droppedFrames).toBe(20);
    expect(seqOf(feed.packets[victim + 1]!)).toBe((seqOf(feed.packets[victim]!) + 1) & 0xffff);
  });

  it('notices a delta frame lost whole (its neighbours intact) and waits for the next keyframe', async () => {
    const feed = await programFeed({ seconds: 3, video: 'h264', audio: false });
    const gone = parseRtpHeader(feed.packets.find((p) => p.info.arrivalMs === feed.frames[40]!.arrivalMs)!.packet)!.timestamp;
    const d = new H264Depacketizer({ maxWaitMs: 100 });
    const numbers = run(
      d,
      feed.packets.filter((p) => parseRtpHeader(p.packet)!.timestamp !== gone),
    ).map(frameNumber);
    // frames 41-59 reference the lost one: a decoder would show them damaged
    expect(numbers).toEqual([...Array.from({ length: 40 }, (_, n) => n), ...Array.from({ length: 30 }, (_, n) => 60 + n)]);
  });

  it('waits for a keyframe at the start (joining mid-GOP)', async () => {
    const feed = await programFeed({ seconds: 3, video: 'h264', audio: false });
    const fromFrame10 = feed.packets.filter((p) => p.info.arrivalMs >= feed.frames[10]!.arrivalMs);
    const frames = run(new H264Depacketizer(), fromFrame10);
    expect(frameNumber(frames[0]!)).toBe(30);
    expect(frames[0]!.keyframe).toBe(true);
    // starting inside keyframe 30 (its IDR slice, after the packet with SPS/PPS) is not a start: the next keyframe is
    const k = feed.packets.findIndex((p) => p.info.arrivalMs === feed.frames[30]!.arrivalMs);
    const inside = run(new H264Depacketizer(), feed.packets.slice(k + 1));
    expect(frameNumber(inside[0]!)).toBe(60);
  });

  it('parses SPS sizes (cropping) and builds avcC', async () => {
    for (const [width, height, profile] of [
      [640, 360, 'baseline'],
      [1280, 720, 'high'],
      [854, 480, 'main'],
    ] as const) {
      const fx = await h264Fixture({ width, height, profile, seconds: 1 });
      const sps = fx.frames[0]!.nals.find((n) => (n[0]! & 0x1f) === 7)!;
      const pps = fx.frames[0]!.nals.find((n) => (n[0]! & 0x1f) === 8)!;
      expect(parseSps(sps)).toMatchObject({ width, height });
      const record = avcC(sps, pps);
      expect(record[0]).toBe(1);
      expect(record[1]).toBe(sps[1]);
      expect(record.length).toBe(11 + sps.length + pps.length + ([100, 110, 122, 244].includes(sps[1]!) ? 4 : 0));
    }
  });
});

describe('VP8 depacketizer', () => {
  it('reassembles frames, finds key frames and the picture size; loss waits for the next key frame', async () => {
    const feed = await programFeed({ seconds: 3, video: 'vp8', audio: false });
    const d = new Vp8Depacketizer();
    const frames = run(d, feed.packets);
    expect(frames).toHaveLength(90);
    expect(frames.map((f, i) => (f.keyframe ? i : -1)).filter((i) => i >= 0)).toEqual([0, 30, 60]);
    expect(frames[0]!.config).toEqual({ codec: 'vp8', width: 640, height: 360, codecString: 'vp8' });

    const victim = feed.packets.findIndex((p) => p.info.arrivalMs === feed.frames[45]!.arrivalMs);
    const lossy = new Vp8Depacketizer({ maxWaitMs: 100 });
    const kept = run(
      lossy,
      feed.packets.filter((_, k) => k !== victim),
    );
    expect(kept).toHaveLength(90 - 15);
    expect(lossy.stats).toMatchObject({ lostPackets: 1, droppedFrames: 15 });
  });
});

describe('VP8 depacketizer, a frame lost whole', () => {
  it('drops the delta frames after it until the next key frame', async () => {
    const feed = await programFeed({ seconds: 3, video: 'vp8', audio: false });
    const gone = parseRtpHeader(feed.packets.find((p) => p.info.arrivalMs === feed.frames[45]!.arrivalMs)!.packet)!.timestamp;
    const d = new Vp8Depacketizer({ maxWaitMs: 100 });
    const kept = run(
      d,
      feed.packets.filter((p) => parseRtpHeader(p.packet)!.timestamp !== gone),
    );
    expect(kept).toHaveLength(90 - 15);
    expect(kept.filter((f) => f.keyframe)).toHaveLength(3);
  });
});

describe('Opus depacketizer', () => {
  it('one packet is one frame; a lost packet loses only itself', async () => {
    const feed = await programFeed({ seconds: 1, audio: true });
    const d = new OpusDepacketizer({ maxWaitMs: 50 });
    const frames = run(
      d,
      feed.packets.filter((_, k) => k !== 10),
    );
    expect(frames).toHaveLength(49);
    expect(d.stats).toEqual({ frames: 49, droppedFrames: 0, lostPackets: 1 });
    expect(frames.every((f) => f.keyframe)).toBe(true);
  });
});
