/**
 * DVR building blocks: keyframe detection per codec, the buffer's window and
 * memory bound over a long synthetic stream, and seeking through a real
 * mediasoup worker (replay producer → consumer) landing on the right GOP.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import * as mediasoup from 'mediasoup';
import type { types } from 'mediasoup';
import { buildRtp, findStamp, h264Fixture, H264Depacketizer, packetizeH264, parseRtp, withStamp } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA_CODECS } from '../codecs.ts';
import { resolveWorkerBin } from '../worker-bin.ts';
import { DvrBuffer, PACKET_OVERHEAD } from './buffer.ts';
import { isKeyframeStart } from './keyframe.ts';
import { ReplaySession } from './replay.ts';

const rtp = (payload: number[]) =>
  buildRtp({ payloadType: 96, sequenceNumber: 1, timestamp: 1, ssrc: 1, marker: false }, Uint8Array.from(payload));

describe('keyframe detection', () => {
  it('H.264: IDR and SPS in single NAL, STAP-A and FU-A start; not P slices or FU-A continuations', () => {
    expect(isKeyframeStart('h264', rtp([0x65, 0]))).toBe(true); // IDR
    expect(isKeyframeStart('h264', rtp([0x67, 0]))).toBe(true); // SPS
    expect(isKeyframeStart('h264', rtp([0x41, 0]))).toBe(false); // P slice
    expect(isKeyframeStart('h264', rtp([0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0]))).toBe(true); // STAP-A(SPS, PPS)
    expect(isKeyframeStart('h264', rtp([0x78, 0, 2, 0x06, 0, 0, 2, 0x41, 0]))).toBe(false); // STAP-A(SEI, P)
    expect(isKeyframeStart('h264', rtp([0x7c, 0x85, 0]))).toBe(true); // FU-A start, IDR
    expect(isKeyframeStart('h264', rtp([0x7c, 0x05, 0]))).toBe(false); // FU-A middle
    expect(isKeyframeStart('h264', rtp([0x7c, 0x81, 0]))).toBe(false); // FU-A start, P
  });
  it('VP8, VP9 and AV1', () => {
    expect(isKeyframeStart('vp8', rtp([0x10, 0x00]))).toBe(true); // S=1, PID=0, P=0
    expect(isKeyframeStart('vp8', rtp([0x10, 0x01]))).toBe(false); // inter frame
    expect(isKeyframeStart('vp8', rtp([0x90, 0x80, 0x81, 0x23, 0x00]))).toBe(true); // X with 15-bit PictureID
    expect(isKeyframeStart('vp8', rtp([0x00, 0x00]))).toBe(false); // not a partition start
    expect(isKeyframeStart('vp9', rtp([0x08]))).toBe(true); // B=1, P=0
    expect(isKeyframeStart('vp9', rtp([0x48]))).toBe(false); // inter-predicted
    expect(isKeyframeStart('av1', rtp([0x08]))).toBe(true); // N=1
    expect(isKeyframeStart('av1', rtp([0x00]))).toBe(false);
  });
});

describe('DVR buffer', () => {
  it('keeps the window and stays within the memory formula over a long synthetic stream', () => {
    const windowMs = 60_000;
    const buf = new DvrBuffer({ windowMs, maxBytes: 1 << 30 });
    const packet = Buffer.alloc(1100);
    // 10 minutes of 1 Mbit/s video (≈ 114 packets/s) + 50 audio packets/s, 1 keyframe per 2 s
    let t = 0;
    for (let ms = 0; ms < 600_000; ms += 5) {
      t = ms;
      if (ms % 10 === 0) buf.push({ at: t, kind: 'video', keyframe: ms % 2000 === 0, data: packet });
      if (ms % 20 === 0) buf.push({ at: t, kind: 'audio', keyframe: false, data: packet.subarray(0, 160) });
    }
    const r = buf.range()!;
    expect(r.end - r.start).toBeLessThanOrEqual(windowMs);
    expect(r.end - r.start).toBeGreaterThan(windowMs - 50);
    const formula = (windowMs / 1000) * (100 * (1100 + PACKET_OVERHEAD) + 50 * (160 + PACKET_OVERHEAD));
    expect(buf.bytes).toBeLessThanOrEqual(formula * 1.01);
    // what it holds: the window's payloads (up to one block evicted but not yet freed) and the index, less than the formula's overhead
    const payloads = (windowMs / 1000) * (100 * 1100 + 50 * 160);
    expect(buf.heldBytes).toBeGreaterThan(payloads);
    expect(buf.heldBytes).toBeLessThan(buf.bytes + (1 << 20));
    const kf = buf.at(buf.keyframeAtOrBefore(r.end - 10_000)!)!;
    expect(kf.keyframe).toBe(true);
    expect(r.end - 10_000 - kf.at).toBeLessThan(2000);
    expect(r.end - 10_000 - kf.at).toBeGreaterThanOrEqual(0);
  });

  it('keeps packets off the JavaScript heap (the garbage collector does not walk one object per packet)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const buf = new DvrBuffer({ windowMs: 3600_000, maxBytes: 1 << 30 });
    const packet = Buffer.alloc(1100, 1);
    gc();
    const before = process.memoryUsage().heapUsed;
    // ~25 minutes of one 2.5 Mbit/s channel
    for (let i = 0; i < 500_000; i++) buf.push({ at: i * 3, kind: i % 6 ? 'video' : 'audio', keyframe: i % 200 === 0, data: packet });
    gc();
    const grewMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    // an object per packet would be tens of MB here; the typed-array index and the 1 MiB blocks are a few objects
    expect(grewMb).toBeLessThan(8);
    expect(buf.at(buf.start + 123_456)!.data.equals(packet)).toBe(true);
    expect(buf.bytes).toBeGreaterThan(500_000 * 1100);
  });

  it('shrinks the window to the memory budget', () => {
    const buf = new DvrBuffer({ windowMs: 3600_000, maxBytes: 1_000_000 });
    for (let i = 0; i < 10_000; i++) buf.push({ at: i * 10, kind: 'video', keyframe: i % 100 === 0, data: Buffer.alloc(1000) });
    expect(buf.bytes).toBeLessThanOrEqual(1_000_000);
    expect(buf.at(buf.keyframeAtOrBefore(0)!)!.keyframe).toBe(true); // oldest keyframe still indexed
  });

  it('spills beyond the memory budget to disk: the whole window stays seekable, memory within budget, old segments freed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'whipcast-dvr-test-'));
    const windowMs = 60_000;
    const maxBytes = 2_000_000;
    const buf = new DvrBuffer({ windowMs, maxBytes, spillDir: dir, segmentBytes: 1 << 20 });
    const payload = (i: number) => {
      const b = Buffer.alloc(1000 + (i % 200));
      b.writeUInt32BE(i, 0);
      b.writeUInt32BE(i * 7, b.length - 4);
      return b;
    };
    // 5 minutes at 100 packets/s ≈ 1 Mbit/s: the 60 s window needs ~6.6 MB, three times the budget
    let i = 0;
    for (; i < 30_000; i++) buf.push({ at: i * 10, kind: 'video', keyframe: i % 200 === 0, data: payload(i) });
    const r = buf.range()!;
    expect(r.end - r.start).toBeGreaterThan(windowMs - 50); // the window did not shrink
    expect(buf.bytes).toBeLessThanOrEqual(maxBytes);
    expect(buf.heldBytes).toBeLessThanOrEqual(maxBytes + (1 << 20)); // spilled blocks are not held
    expect(buf.diskBytes).toBeGreaterThan(3_000_000);
    expect(buf.diskBytes).toBeLessThan(7_000_000); // evicted segments are given back
    for (const abs of [buf.start, buf.start + 1234, buf.keyframeAtOrBefore(r.end - 45_000)!, buf.end - 1]) {
      const p = buf.at(abs)!;
      const n = p.data.readUInt32BE(0);
      expect(p.data.equals(payload(n))).toBe(true);
      expect(p.at).toBe(n * 10);
    }
    expect(buf.at(buf.keyframeAtOrBefore(r.end - 45_000)!)!.keyframe).toBe(true);
    expect(readdirSync(dir)).toEqual([]); // spill files are unlinked at once
    buf.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('seeking through a real mediasoup worker', () => {
  let worker: types.Worker;
  let router: types.Router;
  beforeAll(async () => {
    worker = await mediasoup.createWorker({ workerBin: resolveWorkerBin(), logLevel: 'warn' });
    router = await worker.createRouter({ mediaCodecs: MEDIA_CODECS });
  });
  afterAll(() => worker?.close());

  it('lands on the keyframe at or before the target (10 s, 60 s, window start) with audio, and catches up faster than real time', async () => {
    const fixture = await h264Fixture({ keyframeInterval: 2, seconds: 4, width: 320, height: 180, kbps: 300 });
    const video = router.rtpCapabilities.codecs!.find(
      (c) => c.mimeType === 'video/H264' && c.parameters?.['profile-level-id'] === '42e01f',
    )!;
    const audio = router.rtpCapabilities.codecs!.find((c) => c.mimeType === 'audio/opus')!;
    const vCodec: types.RtpCodecParameters = {
      mimeType: video.mimeType,
      payloadType: video.preferredPayloadType!,
      clockRate: 90000,
      parameters: video.parameters,
    };
    const aCodec: types.RtpCodecParameters = {
      mimeType: audio.mimeType,
      payloadType: audio.preferredPayloadType!,
      clockRate: 48000,
      channels: 2,
    };

    // 3 minutes of stream, stamped with its own capture time, "recorded" into the buffer ending now.
    // a small memory budget: most of what the seeks read comes back from the spill files
    const buf = new DvrBuffer({ windowMs: 30 * 60_000, maxBytes: 10_000_000, spillDir: join(tmpdir(), 'whipcast-dvr-test') });
    const now = Date.now();
    const t0 = now - 180_000;
    let seq = 0;
    let aseq = 0;
    for (let i = 0; i < 180 * 30; i++) {
      const at = t0 + Math.round((i * 1000) / 30);
      const au = fixture.frames[i % fixture.frames.length]!;
      const payloads = packetizeH264(withStamp(au.nals, { frame: i, captureUs: at * 1000 }));
      payloads.forEach((p, k) => {
        const data = buildRtp(
          {
            payloadType: vCodec.payloadType,
            sequenceNumber: seq++ & 0xffff,
            timestamp: i * 3000,
            ssrc: 1111,
            marker: k === payloads.length - 1,
          },
          p,
        );
        buf.push({ at, kind: 'video', keyframe: isKeyframeStart('h264', data), data });
      });
      if (i % 3 !== 0) continue;
      for (let a = 0; a < 5 && (i * 5) / 3 + a < 180 * 50; a++) {
        const data = buildRtp(
          { payloadType: aCodec.payloadType, sequenceNumber: aseq++ & 0xffff, timestamp: (i * 5 + a) * 960, ssrc: 2222, marker: false },
          Buffer.alloc(80),
        );
        buf.push({ at: at + a * 20, kind: 'audio', keyframe: false, data });
      }
    }

    expect(buf.range()!.start).toBe(t0); // nothing dropped
    expect(buf.diskBytes).toBeGreaterThan(500_000); // the older part of the stream is read back from disk
    const sink = await router.createDirectTransport();
    async function firstFrameAfterSeek(target: number, catchUpRate = 1) {
      const from = buf.keyframeAtOrBefore(target)!;
      const replay = await ReplaySession.create({
        buffer: buf,
        router,
        tracks: [
          { kind: 'video', codec: vCodec, ssrcs: [1111] },
          { kind: 'audio', codec: aCodec, ssrcs: [2222] },
        ],
        from,
        catchUpRate,
      });
      const caps = router.rtpCapabilities;
      const vc = await sink.consume({ producerId: replay.producers.get('video')!.id, rtpCapabilities: caps });
      const ac = await sink.consume({ producerId: replay.producers.get('audio')!.id, rtpCapabilities: caps });
      let audioPackets = 0;
      ac.on('rtp', () => audioPackets++);
      const started = performance.now();
      const frame = new Promise<{ captureMs: number; keyframe: boolean; ms: number }>((resolve) => {
        const d = new H264Depacketizer((f) => {
          if (f.incomplete) return;
          resolve({ captureMs: findStamp(f.nals)!.captureUs / 1000, keyframe: f.keyframe, ms: performance.now() - started });
        });
        vc.on('rtp', (packet) => {
          const p = parseRtp(packet)!;
          d.push(p.payload, p.timestamp, p.sequenceNumber, p.marker);
        });
      });
      replay.play();
      const first = await frame;
      await new Promise((r) => setTimeout(r, 300));
      const behind = replay.behindLiveMs();
      replay.close();
      return { ...first, audioPackets, behind };
    }

    for (const back of [10_000, 60_000, 180_000]) {
      const target = now - back;
      const f = await firstFrameAfterSeek(target);
      expect(f.keyframe).toBe(true);
      expect(f.captureMs).toBeLessThanOrEqual(Math.max(target, t0)); // at or before the target…
      expect(Math.max(target, t0) - f.captureMs).toBeLessThanOrEqual(2000); // …within one GOP
      expect(f.ms).toBeLessThan(500); // the first frame comes at once
      expect(f.audioPackets).toBeGreaterThan(5); // audio alongside
    }
    // catch-up at 2x: 6 s behind → live edge in ~6 s of wall time, measured by how far behind it is after 300 ms
    const c = await firstFrameAfterSeek(now - 6_000 + (Date.now() - now), 2);
    expect(c.behind).toBeLessThan(6_000 + (Date.now() - now));
  });
});
