/**
 * VP9 and AV1 channels recorded end to end: a real server and mediasoup
 * worker, an OBS-like publisher (libdatachannel) sending frame-numbered VP9
 * or AV1 (libvpx / libaom, packetized as browsers do) + Opus over
 * ICE/DTLS/SRTP on 127.0.0.1. The ~10 s session is recorded while live;
 * the download is an MP4 with `moov` first, the right codec, the session's
 * length and every frame in order (read off the decoded picture); the
 * poster is a JPEG; a clip of the VP9 channel holds the frames live in its
 * last 5 s.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { framesOfFile, numberedIvfFixture, ObsPublisher, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRecording } from './api.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';
import { topLevelBoxes } from '../sfu/recording/testing.ts';

const run = promisify(execFile);
const recordingsDir = mkdtempSync(join(tmpdir(), 'whipcast-rec-vp9av1-'));
const scratch = mkdtempSync(join(tmpdir(), 'whipcast-rec-vp9av1-dl-'));
let server: TestServer;
const VIDEO = { seconds: 30 };
const SESSION_SECONDS = 10;

beforeAll(async () => {
  // encoding the fixtures takes seconds: ahead of the publishers' clocks
  await Promise.all([numberedIvfFixture('vp9', VIDEO), numberedIvfFixture('av1', VIDEO)]);
  server = await startTestServer({
    media: createSfuMedia,
    env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500', RECORDINGS_DIR: recordingsDir, RECORDINGS_RECONNECT_GRACE_SECONDS: '1' },
  });
}, 120_000);
afterAll(async () => {
  await server?.close();
  rmSync(recordingsDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function download(url: string, name: string): Promise<{ path: string; data: Buffer; type: string | null }> {
  const path = join(scratch, name);
  const { res, data } = await server.saveFile(url, path);
  expect(res.status).toBe(200);
  return { path, data, type: res.headers.get('content-type') };
}

async function probe(path: string): Promise<{ format: { duration?: string }; streams: { codec_type: string; codec_name: string }[] }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path]);
  return JSON.parse(stdout) as { format: { duration?: string }; streams: { codec_type: string; codec_name: string }[] };
}

/** Frame numbers in order, one apart from the first to the last. */
function inOrder(frames: (number | null)[]): boolean {
  return frames.length > 0 && frames.every((n, i) => n !== null && (i === 0 || n === frames[i - 1]! + 1));
}

describe('recording VP9 and AV1 channels', () => {
  for (const [codec, name] of [
    ['VP9', 'vp9'],
    ['AV1', 'av1'],
  ] as const) {
    it(`${codec}: records the session, serves a moov-first MP4 download with every frame in order and a poster${codec === 'VP9' ? '; clips it' : ''}`, async () => {
      const { channelId, streamKey, auth } = await server.streamer();
      const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, codec, numbered: true, video: VIDEO });
      await pub.connected();
      await waitUntil(() => pub.counters.frames >= SESSION_SECONDS * 30, 30_000, `${SESSION_SECONDS} s published`);
      if (codec === 'VP9') {
        const sentBeforeClip = pub.counters.frames;
        const res = await server.api(`/api/live/streams/${channelId}/clips`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ durationS: 5 }),
        });
        expect(res.status).toBe(201);
        const sentAfterClip = pub.counters.frames;
        const clip = (await res.json()) as { downloadUrl: string };
        const file = await download(clip.downloadUrl, 'clip.mp4');
        expect(file.type).toBe('video/mp4');
        expect(topLevelBoxes(file.data).indexOf('moov')).toBeLessThan(topLevelBoxes(file.data).indexOf('mdat'));
        const frames = await framesOfFile(file.path);
        expect(inOrder(frames)).toBe(true);
        // the last 5 s, from the keyframe at or before its start (keyframe every second): 150–180 frames
        expect(frames.length).toBeGreaterThanOrEqual(150);
        expect(frames.length).toBeLessThanOrEqual(185);
        // it ends at what was live while the request was served (a loaded machine can take a while to answer)
        expect(frames.at(-1)!).toBeGreaterThan(sentBeforeClip - 15);
        expect(frames.at(-1)!).toBeLessThan(sentAfterClip);
      }
      expect(await pub.stop()).toBe(200);
      const sent = pub.counters.frames;
      let done: ApiRecording | undefined;
      for (const deadline = Date.now() + 30_000; !(done = (await server.recordings(channelId))[0])?.endedAt;) {
        if (Date.now() > deadline) throw new Error('recording not finished after 30 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Math.abs(done!.durationMs - (sent / 30) * 1000)).toBeLessThan(500);

      const dl = await download(done!.downloadUrl, `${name}.mp4`);
      expect(dl.type).toBe('video/mp4');
      const top = topLevelBoxes(dl.data);
      expect(top.indexOf('moov')).toBeLessThan(top.indexOf('mdat'));
      const p = await probe(dl.path);
      expect(p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:opus', `video:${name}`]);
      expect(Math.abs(Number(p.format.duration) - sent / 30)).toBeLessThan(0.5);
      const frames = await framesOfFile(dl.path);
      expect(inOrder(frames)).toBe(true);
      expect(frames.length).toBeGreaterThan(sent - 20);
      const poster = await server.api(done!.posterUrl!);
      expect(poster.status).toBe(200);
      expect(
        Buffer.from(await poster.arrayBuffer())
          .subarray(0, 2)
          .toString('hex'),
      ).toBe('ffd8');
    }, 90_000);
  }
});
