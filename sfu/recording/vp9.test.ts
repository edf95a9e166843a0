/**
 * The VP9 depacketizer on real VP9 (libvpx, the frame-numbered picture):
 * packets from testkit's browser-like packetizer and from GStreamer's
 * rtpvp9pay come back as the encoder's frames, byte for byte; key frames,
 * profile and picture size are found; loss drops the damaged frame and
 * everything up to the next key frame; spatial layers become a superframe.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildRtp, framesOfFile, numberedIvfFixture, packetizeVp9 } from '@whipcast/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { ivfFrame, ivfHeader } from './ivf.ts';
import { programFeed, type FeedPacket } from './testing.ts';
import type { CodedFrame } from './types.ts';
import { parseVp9Descriptor, parseVp9FrameHeader, vp9CodecString, Vp9Depacketizer } from './vp9.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'whipcast-vp9-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const feedOf = (packets: FeedPacket[], d = new Vp9Depacketizer()): CodedFrame[] =>
  packets.flatMap((p) => d.push(p.packet, p.info.arrivalMs));
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => a + k);

/** The frame number each frame shows, decoded by ffmpeg from an IVF of the frames. */
async function numbers(frames: CodedFrame[]): Promise<(number | null)[]> {
  const ivf = Buffer.concat([ivfHeader(640, 360, 30, frames.length, 'vp9'), ...frames.map((f, k) => ivfFrame(f.data, k))]);
  return framesOfFile(ivf, { inputFormat: 'ivf', width: 640, height: 360 });
}

describe('VP9 depacketizer', () => {
  it('gives back the encoder’s frames byte for byte, finds key frames and the stream’s configuration', async () => {
    const feed = await programFeed({ seconds: 3, video: 'vp9', audio: false });
    const fx = await numberedIvfFixture('vp9', { seconds: 40 });
    const d = new Vp9Depacketizer();
    const frames = feedOf(feed.packets, d);
    expect(d.stats).toEqual({ frames: 90, droppedFrames: 0, lostPackets: 0 });
    frames.forEach((f, i) => expect(Buffer.from(f.data).equals(fx.frames[i]!.data)).toBe(true));
    expect(frames.flatMap((f, i) => (f.keyframe ? [i] : []))).toEqual([0, 30, 60]);
    expect(frames[0]!.config).toEqual({ codec: 'vp9', width: 640, height: 360, codecString: 'vp09.00.21.08' });
    expect(frames.filter((f) => f.config)).toHaveLength(1);
    expect(await numbers(frames)).toEqual(range(0, 89));
  });

  it('reads what GStreamer’s rtpvp9pay sends (scalability structure with a picture group, 15-bit picture IDs)', async () => {
    const fx = await numberedIvfFixture('vp9', { seconds: 40 });
    const src = join(dir, 'in.ivf');
    const out = join(dir, 'out.rtp');
    const frames = fx.frames.slice(0, 60);
    writeFileSync(src, Buffer.concat([ivfHeader(640, 360, 30, frames.length, 'vp9'), ...frames.map((f, k) => ivfFrame(f.data, k))]));
    await run('gst-launch-1.0', [
      ...['-q', 'filesrc', `location=${src}`, '!', 'ivfparse', '!', 'rtpvp9pay', 'mtu=1000', 'picture-id-mode=15-bit'],
      ...['!', 'rtpstreampay', '!', 'filesink', `location=${out}`],
    ]);
    const stream = readFileSync(out);
    const d = new Vp9Depacketizer();
    const got: CodedFrame[] = [];
    let sawGroup = false;
    for (let off = 0; off + 2 <= stream.length;) {
      const len = stream.readUInt16BE(off);
      const packet = stream.subarray(off + 2, off + 2 + len);
      if (packet[12]! & 0x02) sawGroup ||= (packet[15]! & 0x08) !== 0; // V: the SS byte follows the 15-bit picture ID
      got.push(...d.push(packet, 1000 + off));
      off += 2 + len;
    }
    got.push(...d.push(buildRtp({ payloadType: 96, sequenceNumber: 0, timestamp: 1, ssrc: 1, marker: true }, Uint8Array.of(0x0c)), 9e9));
    expect(sawGroup).toBe(true);
    expect(got).toHaveLength(60);
    got.forEach((f, i) => expect(Buffer.from(f.data).equals(frames[i]!.data)).toBe(true));
    expect(got.flatMap((f, i) => (f.keyframe ? [i] : []))).toEqual([0, 30]);
    expect(got[0]!.config).toMatchObject({ width: 640, height: 360 });
  });

  it('a lost packet drops its frame and every frame up to the next key frame; so does a whole lost frame', async () => {
    const feed = await programFeed({ seconds: 3, video: 'vp9', audio: false });
    const at = (n: number) => feed.frames[n]!.arrivalMs;
    const one = feed.packets.findIndex((p) => p.info.arrivalMs === at(45));
    const d1 = new Vp9Depacketizer({ maxWaitMs: 100 });
    const kept = feedOf(
      feed.packets.filter((_, k) => k !== one),
      d1,
    );
    expect(await numbers(kept)).toEqual([...range(0, 44), ...range(60, 89)]);
    expect(d1.stats).toMatchObject({ lostPackets: 1, droppedFrames: 15 });
    // frame 45 entirely gone: frame 46 starts cleanly after the gap but cannot be decoded without it
    const d2 = new Vp9Depacketizer({ maxWaitMs: 100 });
    const kept2 = feedOf(
      feed.packets.filter((p) => p.info.arrivalMs !== at(45)),
      d2,
    );
    expect(await numbers(kept2)).toEqual([...range(0, 44), ...range(60, 89)]);
    // joining in the middle of a group of pictures waits for the key frame
    expect(await numbers(feedOf(feed.packets.filter((p) => p.info.arrivalMs >= at(10))))).toEqual(range(30, 89));
  });

  it('spatial layers of one picture become a superframe; malformed descriptors are loss, not exceptions', async () => {
    const fx = await numberedIvfFixture('vp9', { seconds: 40 });
    const [base, upper] = [fx.frames[0]!.data, fx.frames[1]!.data];
    // layer 0 (key) and layer 1 of one picture, same timestamp, L bit with the spatial layer id
    const layer = (frame: Uint8Array, sid: number, predicted: boolean) =>
      packetizeVp9(frame, 7, { width: 640, height: 360 }).map((p) => {
        const withL = Buffer.concat([p.subarray(0, 3), Uint8Array.of(sid << 1, 0), p.subarray(3)]);
        withL[0] = (withL[0]! | 0x20) & (predicted ? 0xff : ~0x40);
        return withL;
      });
    const payloads = [...layer(base, 0, false), ...layer(upper, 1, true)];
    const d = new Vp9Depacketizer();
    const out = payloads.flatMap((p, k) =>
      d.push(buildRtp({ payloadType: 98, sequenceNumber: k, timestamp: 3000, ssrc: 5, marker: k === payloads.length - 1 }, p), 0),
    );
    expect(out).toHaveLength(1);
    const sf = Buffer.from(out[0]!.data);
    expect(out[0]!.keyframe).toBe(true);
    expect(sf.subarray(0, base.length).equals(base)).toBe(true);
    expect(sf.subarray(base.length, base.length + upper.length).equals(upper)).toBe(true);
    const marker = sf[sf.length - 1]!;
    expect(marker & 0xe0).toBe(0xc0);
    expect(marker & 0x07).toBe(1); // two frames
    // ffmpeg splits and decodes the superframe (its upper frame is a delta frame of another picture: only the count is checked)
    const ivf = Buffer.concat([ivfHeader(640, 360, 30, 1, 'vp9'), ivfFrame(sf, 0)]);
    expect((await framesOfFile(ivf, { inputFormat: 'ivf', width: 640, height: 360 })).length).toBeGreaterThanOrEqual(1);

    for (const bad of [Uint8Array.of(), Uint8Array.of(0xa8), Uint8Array.of(0x1a, 0x90, 2, 128), Uint8Array.of(0x0a, 0x10, 1)]) {
      const dd = new Vp9Depacketizer();
      expect(dd.push(buildRtp({ payloadType: 98, sequenceNumber: 1, timestamp: 1, ssrc: 5, marker: true }, bad), 0)).toEqual([]);
      expect(parseVp9Descriptor(bad)).toBeNull();
    }
  });

  it('parses the uncompressed header and writes codec strings for profiles, depths, sizes', async () => {
    const fx = await numberedIvfFixture('vp9', { seconds: 40 });
    expect(parseVp9FrameHeader(fx.frames[1]!.data)).toEqual({ keyframe: false, profile: 0 });
    expect(parseVp9FrameHeader(fx.frames[0]!.data)).toMatchObject({
      keyframe: true,
      profile: 0,
      bitDepth: 8,
      width: 640,
      height: 360,
    });
    expect(parseVp9FrameHeader(Uint8Array.of(0x00))).toBeNull();
    expect(vp9CodecString({ profile: 0, bitDepth: 8, width: 1280, height: 720, chroma: 0, fullRange: false })).toBe('vp09.00.31.08');
    expect(vp9CodecString({ profile: 0, bitDepth: 8, width: 1920, height: 1080, chroma: 0, fullRange: false })).toBe('vp09.00.40.08');
    expect(vp9CodecString({ profile: 2, bitDepth: 10, width: 640, height: 360, chroma: 0, fullRange: true })).toBe(
      'vp09.02.21.10.01.01.01.01.01',
    );
  });
});
