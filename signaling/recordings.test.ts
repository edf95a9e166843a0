/**
 * Past broadcasts end to end: a real server and mediasoup worker, an OBS-like
 * publisher sending frame-numbered H.264 + Opus over ICE/DTLS/SRTP on
 * 127.0.0.1. The session is recorded while live (the growing file plays up to
 * its last complete fragment), the download file is built when it ends
 * (`moov` first, both tracks, the session's length, every frame in order, read
 * back off the picture), a publisher reconnect continues the same recording,
 * a channel with "Save past broadcasts" off writes nothing, and the routes
 * answer 401/403/404 as documented.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { framesOfFile, numberedH264Fixture, ObsPublisher, waitUntil } from '@whipcast/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiRecording, ApiStream } from './api.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';
import { topLevelBoxes } from '../sfu/recording/testing.ts';

const run = promisify(execFile);
const recordingsDir = mkdtempSync(join(tmpdir(), 'whipcast-recordings-'));
const scratch = mkdtempSync(join(tmpdir(), 'whipcast-recordings-dl-'));
let server: TestServer;
/** The numbered fixture (made once, ahead: encoding it takes seconds). */
const VIDEO = { seconds: 30 };
/** Length of the main recorded session, s. */
const SESSION_SECONDS = 20;

beforeAll(async () => {
  await numberedH264Fixture(VIDEO);
  server = await startTestServer({
    media: createSfuMedia,
    env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500', RECORDINGS_DIR: recordingsDir, RECORDINGS_RECONNECT_GRACE_SECONDS: '3' },
  });
});
afterAll(async () => {
  await server?.close();
  rmSync(recordingsDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function waitFinished(channelId: string, timeoutMs = 30_000): Promise<ApiRecording> {
  let found: ApiRecording | undefined;
  await eventually(
    async () => {
      found = (await server.recordings(channelId))[0];
      return !!found?.endedAt;
    },
    timeoutMs,
    'recording finished',
  );
  return found!;
}

async function fetchFile(url: string, name: string, init: RequestInit = {}): Promise<{ path: string; res: Response; data: Buffer }> {
  const path = join(scratch, name);
  return { path, ...(await server.saveFile(url, path, init)) };
}

/** Polls an async check every 100 ms. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Probe {
  format: { duration?: string };
  streams: { codec_type: string; codec_name: string }[];
}
async function ffprobe(path: string): Promise<Probe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', path]);
  return JSON.parse(stdout) as Probe;
}

/** The numbers must rise one by one except at most `gaps` jumps (a reconnect). */
function jumps(frames: (number | null)[]): number[] {
  const nums = frames.filter((n): n is number => n !== null);
  const out: number[] = [];
  for (let i = 1; i < nums.length; i++) if (nums[i] !== nums[i - 1]! + 1) out.push(nums[i]! - nums[i - 1]!);
  return out;
}

describe('recording a live session', () => {
  it('records while live, then serves a moov-first download with both tracks, the live length and every frame', async () => {
    const { channelId, streamKey, auth } = await server.streamer();
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
    await pub.connected();
    // while live: listed, not ended, and the growing file plays up to its last complete fragment
    await eventually(async () => ((await server.recordings(channelId))[0]?.durationMs ?? 0) >= 2000, 15_000, 'two seconds recorded');
    const live = (await server.recordings(channelId))[0]!;
    expect(live.endedAt).toBeNull();
    expect(live.playbackUrl).toBe(`/api/recordings/${live.id}/playback`);
    expect((await server.api(live.downloadUrl)).status).toBe(409);
    const growing = await fetchFile(live.playbackUrl, 'growing.mp4');
    expect(growing.res.status).toBe(200);
    expect(topLevelBoxes(growing.data).slice(0, 2)).toEqual(['ftyp', 'moov']);
    expect(topLevelBoxes(growing.data).at(-1)).toBe('mdat'); // ends at a complete fragment
    const growingFrames = await framesOfFile(growing.path);
    expect(growingFrames.length).toBeGreaterThanOrEqual(30);
    expect(jumps(growingFrames)).toEqual([]);
    // a Range request into the growing file
    const part = await server.api(live.playbackUrl, { headers: { range: 'bytes=0-99' } });
    expect(part.status).toBe(206);
    // the file may have grown by a fragment since it was fetched
    const total = /^bytes 0-99\/(\d+)$/.exec(part.headers.get('content-range') ?? '');
    expect(Number(total?.[1])).toBeGreaterThanOrEqual(growing.data.length);
    expect((await part.arrayBuffer()).byteLength).toBe(100);

    // a 20 s session (the test): 600 frames at 30 fps
    await waitUntil(() => pub.counters.frames >= SESSION_SECONDS * 30, 30_000, `${SESSION_SECONDS} s published`);
    expect(await pub.stop()).toBe(200);
    const sent = pub.counters.frames;
    const done = await waitFinished(channelId);
    expect(done.id).toBe(live.id);
    expect(Math.abs(done.durationMs - (sent / 30) * 1000)).toBeLessThan(500);
    expect(done.posterUrl).toBe(`/api/recordings/${done.id}/poster`);

    const dl = await fetchFile(done.downloadUrl, 'download.mp4');
    expect(dl.res.status).toBe(200);
    expect(dl.res.headers.get('content-type')).toBe('video/mp4');
    expect(dl.res.headers.get('accept-ranges')).toBe('bytes');
    expect(dl.res.headers.get('content-disposition')).toMatch(/^attachment; filename=".+\.mp4"$/);
    const top = topLevelBoxes(dl.data);
    expect(top.indexOf('moov')).toBeGreaterThanOrEqual(0);
    expect(top.indexOf('moov')).toBeLessThan(top.indexOf('mdat'));
    // it plays before it is fully downloaded: the first quarter, streamed through a pipe (no seeking to an index
    // at the end), decodes the first quarter of the frames, in order from the first
    const head = await server.api(done.downloadUrl, { headers: { range: `bytes=0-${Math.floor(dl.data.length / 4)}` } });
    expect(head.status).toBe(206);
    const headFrames = (await framesOfFile(Buffer.from(await head.arrayBuffer()), { width: 640, height: 360 })).filter(
      (n): n is number => n !== null,
    );
    expect(headFrames.length).toBeGreaterThan(sent / 8);
    expect(jumps(headFrames)).toEqual([]);
    const probe = await ffprobe(dl.path);
    expect(probe.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:opus', 'video:h264']);
    expect(Math.abs(Number(probe.format.duration) - sent / 30)).toBeLessThan(0.5);
    const frames = await framesOfFile(dl.path);
    expect(frames.filter((n) => n === null).length).toBe(0);
    expect(jumps(frames)).toEqual([]);
    expect(frames.length).toBeGreaterThan(sent - 20);

    // a Range request into the download, and the poster
    const tail = await server.api(done.downloadUrl, { headers: { range: 'bytes=-1000' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(dl.data.subarray(dl.data.length - 1000))).toBe(true);
    const poster = await server.api(done.posterUrl!);
    expect(poster.status).toBe(200);
    expect(
      Buffer.from(await poster.arrayBuffer())
        .subarray(0, 2)
        .toString('hex'),
    ).toBe('ffd8');
    const one = (await (await server.api(`/api/recordings/${done.id}`)).json()) as ApiRecording;
    expect(one).toEqual(done);
    // no file path leaves the server
    expect(JSON.stringify(one)).not.toContain(recordingsDir);

    // delete: 401 without a session, 403 for another user, 204 for the owner; files gone
    expect((await server.api(`/api/recordings/${done.id}`, { method: 'DELETE' })).status).toBe(401);
    const other = await server.register();
    expect((await server.api(`/api/recordings/${done.id}`, { method: 'DELETE', headers: other.auth })).status).toBe(403);
    expect((await server.api(`/api/recordings/${done.id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await server.api(`/api/recordings/${done.id}`)).status).toBe(404);
    expect((await server.api(done.downloadUrl)).status).toBe(404);
    expect(readdirSync(join(recordingsDir, channelId))).toEqual([]);
  }, 90_000);

  it('continues one recording across a publisher reconnect, and it plays across the gap', async () => {
    const { channelId, streamKey } = await server.streamer();
    const first = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
    await first.connected();
    await eventually(async () => ((await server.recordings(channelId))[0]?.durationMs ?? 0) >= 2000, 15_000, 'recording');
    // OBS's reconnect: the connection drops and a fresh POST replaces the half-dead session
    first.drop();
    await new Promise((r) => setTimeout(r, 1000));
    const second = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
    await second.connected();
    await new Promise((r) => setTimeout(r, 3000));
    expect(await second.stop()).toBe(200);
    const done = await waitFinished(channelId);
    expect(await server.recordings(channelId)).toHaveLength(1);
    const dl = await fetchFile(done.downloadUrl, 'reconnect.mp4');
    const frames = await framesOfFile(dl.path);
    // the second publisher's numbers start again at 0: one jump, everything else in order
    expect(jumps(frames).length).toBe(1);
    const nums = frames.filter((n): n is number => n !== null);
    expect(nums.at(-1)!).toBeGreaterThan(60);
    expect(done.durationMs).toBeGreaterThan(5500);
  }, 60_000);

  it('writes nothing for a channel whose owner turned "Save past broadcasts" off', async () => {
    const { channelId, streamKey, auth, channel: stream } = await server.streamer();
    expect(stream.saveRecordings).toBe(true);
    const put = await server.api(`/api/live/streams/${channelId}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'no vod', description: '', saveRecordings: false }),
    });
    expect(put.status).toBe(200);
    expect(((await put.json()) as ApiStream).saveRecordings).toBe(false);
    const pub = await ObsPublisher.publish({ url: `${server.url}/whip`, token: streamKey, numbered: true });
    await pub.connected();
    await waitUntil(() => pub.counters.keyframes >= 3, 10_000, 'three keyframes sent');
    expect(await pub.stop()).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(await server.recordings(channelId)).toEqual([]);
    expect(readdirSync(recordingsDir)).not.toContain(channelId);
  }, 30_000);

  it('answers 404 for unknown recordings and channels', async () => {
    expect((await server.api('/api/recordings/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await server.api('/api/recordings/not-a-uuid/download')).status).toBe(404);
    expect((await server.api('/api/live/streams/00000000-0000-4000-8000-000000000000/recordings')).status).toBe(404);
    const { auth } = await server.streamer();
    const res = await server.api('/api/recordings/00000000-0000-4000-8000-000000000000', { method: 'DELETE', headers: auth });
    expect(res.status).toBe(404);
  });
});
