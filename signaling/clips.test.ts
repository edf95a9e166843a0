/**
 * Clips end to end: a real server and mediasoup worker, an OBS-like publisher
 * sending frame-numbered H.264 + Opus over ICE/DTLS/SRTP on 127.0.0.1. A clip
 * of the last 10 s holds the frames that were live in those 10 s (read back
 * off the decoded picture), is ready when the POST answers (< 2 s); a clip
 * behind live ends where asked; the routes answer 400/401/403/404/409/429 as
 * documented; the creator and the channel's owner can delete, others cannot.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { framesOfFile, numberedH264Fixture, ObsPublisher } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClip, ApiClipCreated } from './api.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

const recordingsDir = mkdtempSync(join(tmpdir(), 'whipcast-clips-'));
const scratch = mkdtempSync(join(tmpdir(), 'whipcast-clips-dl-'));
let server: TestServer;
const VIDEO = { seconds: 40 };
const FPS = 30;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO);
  server = await startTestServer({
    media: createSfuMedia,
    env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500', RECORDINGS_DIR: recordingsDir, CLIPS_PER_USER_PER_HOUR: '3' },
  });
});
afterAll(async () => {
  await server?.close();
  rmSync(recordingsDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

function clip(channelId: string, auth: Record<string, string> | undefined, body?: unknown): Promise<Response> {
  return server.api(`/api/live/streams/${channelId}/clips`, {
    method: 'POST',
    headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

/** The frame numbers of a clip file, downloaded through the API. */
async function framesOf(url: string, name: string): Promise<number[]> {
  const res = await server.api(url);
  expect(res.status).toBe(200);
  const path = join(scratch, name);
  writeFileSync(path, new Uint8Array(await res.arrayBuffer()));
  const frames = await framesOfFile(path);
  expect(frames.filter((n) => n === null)).toEqual([]);
  return frames as number[];
}

const consecutive = (frames: number[]) => frames.every((n, i) => i === 0 || n === frames[i - 1]! + 1);

describe('clips of a live channel', () => {
  it('cuts the last 10 s (the frames live then) in < 2 s, and 5 s ending 4 s behind live; 4xx as documented; delete', async () => {
    const owner = await server.streamer();
    const viewer = await server.register();
    const offline = await server.streamer();

    // not live yet: 409; no session: 401; unknown channel: 404
    expect((await clip(owner.channelId, viewer.auth)).status).toBe(409);
    expect((await clip(owner.channelId, undefined)).status).toBe(401);
    expect((await clip('00000000-0000-4000-8000-000000000000', viewer.auth)).status).toBe(404);

    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: owner.streamKey, numbered: true, video: VIDEO });
    try {
      await pub.connected();
      await new Promise((r) => setTimeout(r, 13_000));

      // bad input: 400, and nothing counted against the limit
      for (const body of [
        { durationS: 4 },
        { durationS: 61 },
        { durationS: 10.5 },
        { endOffsetMs: -1 },
        { durationS: 10, extra: 1 },
        '{',
      ]) {
        const res = await clip(owner.channelId, viewer.auth, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(((await res.json()) as { error: { message: string } }).error.message).not.toBe('');
      }
      // a channel that is not live; a moment the DVR buffer does not reach
      const notLive = await clip(offline.channelId, viewer.auth);
      expect(notLive.status).toBe(409);
      expect(((await notLive.json()) as { error: { message: string } }).error.message).toMatch(/not live/);
      expect((await clip(owner.channelId, viewer.auth, { endOffsetMs: 3_600_000 })).status).toBe(409);

      // the last 10 s
      const sentBefore = pub.counters.frames; // frames 0..sentBefore-1 were sent before we asked
      const t0 = performance.now();
      const res = await clip(owner.channelId, viewer.auth, { durationS: 10 });
      const ms = performance.now() - t0;
      const sentAfter = pub.counters.frames;
      expect(res.status).toBe(201);
      const created = (await res.json()) as ApiClipCreated;
      expect(created.url).toBe(`/clips/${created.id}`);
      expect(created.downloadUrl).toBe(`/api/clips/${created.id}/download`);
      expect(ms).toBeLessThan(2000);
      const frames = await framesOf(created.downloadUrl, 'last10.mp4');
      expect(consecutive(frames)).toBe(true);
      const last = frames.at(-1)!;
      // ends at what was live when asked (a few frames of loopback and jitter-buffer latency)
      expect(last).toBeLessThanOrEqual(sentAfter - 1);
      expect(last).toBeGreaterThanOrEqual(sentBefore - 1 - 10);
      // holds every frame of those 10 s, from the keyframe at or before their start (one a second)
      expect(frames[0]!).toBeLessThanOrEqual(last - 10 * FPS + 1);
      expect(frames[0]!).toBeGreaterThanOrEqual(last - 11 * FPS);
      expect(frames[0]! % FPS).toBe(0);

      const info = (await (await server.api(`/api/clips/${created.id}`)).json()) as ApiClip;
      expect(info).toMatchObject({
        id: created.id,
        streamId: owner.channelId,
        creator: { id: viewer.user.id },
        downloadUrl: created.downloadUrl,
      });
      expect(Math.abs(info.durationMs - (frames.length / FPS) * 1000)).toBeLessThan(200);
      expect(JSON.stringify(info)).not.toContain(recordingsDir);
      // the poster is the clip's first frame
      expect(info.posterUrl).toBe(`/api/clips/${created.id}/poster`);
      const poster = await server.api(info.posterUrl!);
      expect(poster.headers.get('content-type')).toBe('image/jpeg');
      const posterPath = join(scratch, 'poster.jpg');
      writeFileSync(posterPath, new Uint8Array(await poster.arrayBuffer()));
      expect(await framesOfFile(posterPath)).toEqual([frames[0]]);
      // Range
      const part = await server.api(created.downloadUrl, { headers: { range: 'bytes=0-99' } });
      expect(part.status).toBe(206);
      expect((await part.arrayBuffer()).byteLength).toBe(100);

      // 5 s ending 4 s behind live (a viewer in the DVR window)
      const sentNow = pub.counters.frames;
      const behindRes = await clip(owner.channelId, viewer.auth, { durationS: 5, endOffsetMs: 4000 });
      expect(behindRes.status).toBe(201);
      const behind = await framesOf(((await behindRes.json()) as ApiClipCreated).downloadUrl, 'behind.mp4');
      expect(consecutive(behind)).toBe(true);
      const behindEnd = behind.at(-1)!;
      expect(behindEnd).toBeLessThanOrEqual(sentNow + 5 - 4 * FPS);
      expect(behindEnd).toBeGreaterThanOrEqual(sentNow - 1 - 4 * FPS - 15);
      expect(behind[0]!).toBeLessThanOrEqual(behindEnd - 5 * FPS + 1);
      expect(behind[0]!).toBeGreaterThanOrEqual(behindEnd - 6 * FPS);

      // the limit (3 per hour here): the third passes, the fourth is 429 with Retry-After
      expect((await clip(owner.channelId, viewer.auth, { durationS: 5 })).status).toBe(201);
      const limited = await clip(owner.channelId, viewer.auth, { durationS: 5 });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await limited.json()) as { error: { message: string } }).error.message).toMatch(/3 clips per hour/);
      // another user is not limited by the viewer's clips
      const ownClip = await clip(owner.channelId, owner.auth, { durationS: 5 });
      expect(ownClip.status).toBe(201);
      const ownId = ((await ownClip.json()) as ApiClipCreated).id;

      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/whipcast_clips_total\{outcome="ok"\} 4/);
      expect(metrics).toMatch(/whipcast_clips_total\{outcome="rate_limited"\} 1/);

      // delete: 401 without a session, 403 for a third user, 204 for the creator, the owner deletes the viewer's clip too
      const third = await server.register();
      expect((await server.api(`/api/clips/${created.id}`, { method: 'DELETE' })).status).toBe(401);
      expect((await server.api(`/api/clips/${created.id}`, { method: 'DELETE', headers: third.auth })).status).toBe(403);
      expect((await server.api(`/api/clips/${ownId}`, { method: 'DELETE', headers: viewer.auth })).status).toBe(403);
      expect((await server.api(`/api/clips/${ownId}`, { method: 'DELETE', headers: owner.auth })).status).toBe(204);
      expect((await server.api(`/api/clips/${created.id}`, { method: 'DELETE', headers: viewer.auth })).status).toBe(204);
      expect((await server.api(`/api/clips/${created.id}`)).status).toBe(404);
      expect((await server.api(created.downloadUrl)).status).toBe(404);
      const left = readdirSync(join(recordingsDir, 'clips'));
      expect(left.filter((f) => f.startsWith(created.id) || f.startsWith(ownId))).toEqual([]);
      expect(left.length).toBe(4); // the other two clips and their posters
    } finally {
      await pub.stop().catch(() => {});
    }
  }, 90_000);
});
