/**
 * A full disk under a recording (issue #14): one channel's recording directory
 * is a 512 KiB tmpfs, so its recording fills it after a few seconds of 1 Mbit/s
 * H.264 + Opus from an OBS-like publisher. Its recording stops with one clear
 * log line and `whipcast_recording_errors_total{code="ENOSPC"}`, while the
 * live stream goes on (a WHEP viewer keeps receiving frames), the recording
 * stays listed and playable up to its last complete fragment, and another
 * channel (on the real disk) keeps recording to the end.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { ObsPublisher, waitLive, WhepViewer } from '@whipcast/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ApiRecording, ApiStream } from './api.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

const run = promisify(execFile);
const recordingsDir = mkdtempSync(join(tmpdir(), 'whipcast-full-disk-'));
const scratch = mkdtempSync(join(tmpdir(), 'whipcast-full-disk-dl-'));
const mounts: string[] = [];
/** The server's log lines at warn and above (JSON). */
const logLines: { msg: string; code?: string; channelId?: string; level: number }[] = [];
let server: TestServer;

beforeAll(async () => {
  const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[number]) });
  server = await startTestServer({
    media: createSfuMedia,
    logger,
    env: { MEDIA_WORKERS: '1', PUBLISHER_TIMEOUT_MS: '1500', RECORDINGS_DIR: recordingsDir, RECORDINGS_RECONNECT_GRACE_SECONDS: '1' },
  });
});
afterAll(async () => {
  await server?.close();
  // lazily: a file still open there must not keep the tmpfs mounted
  for (const m of mounts) execFileSync('umount', ['-l', m]);
  rmSync(recordingsDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

async function recordingOf(channelId: string): Promise<ApiRecording | undefined> {
  return (await server.recordings(channelId))[0];
}

/** Polls an async value every 100 ms until `ok` holds. */
async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function enospcCount(): Promise<number> {
  const text = await (await server.api('/metrics')).text();
  const m = /^whipcast_recording_errors_total\{code="ENOSPC"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

it('a full disk stops that recording only: logged, counted, still playable; the live stream and other recordings go on', async () => {
  const full = await server.streamer();
  const other = await server.streamer();
  // the first channel's recordings live on a 512 KiB disk of their own
  const mnt = join(recordingsDir, full.channelId);
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
  mounts.push(mnt);

  const pubFull = await ObsPublisher.publish({ url: `${server.url}/whip`, token: full.streamKey });
  const pubOther = await ObsPublisher.publish({ url: `${server.url}/whip`, token: other.streamKey });
  await Promise.all([pubFull.connected(), pubOther.connected()]);
  await waitLive(server.url, full.channelId);
  const viewer = await WhepViewer.watch({ url: `${server.url}/whep/${full.channelId}` });
  await viewer.connected();

  // 1 Mbit/s fills 512 KiB in about 4 s
  await until(enospcCount, (n) => n === 1, 20_000, 'the ENOSPC metric');
  const failedAt = { viewerFrames: viewer.receiver.video.frames, other: (await recordingOf(other.channelId))!.durationMs };
  const stopped = logLines.filter((l) => l.code === 'ENOSPC');
  expect(stopped).toHaveLength(1);
  expect(stopped[0]).toMatchObject({ level: 50, channelId: full.channelId });
  expect(stopped[0]!.msg).toMatch(/^recording stopped: the disk is full; .* the live stream continues$/);

  // the live stream goes on: the viewer keeps getting frames (30 fps), the channel stays live
  await new Promise((r) => setTimeout(r, 3000));
  expect(viewer.receiver.video.frames - failedAt.viewerFrames).toBeGreaterThan(60);
  const ch = (await (await server.api(`/api/live/streams/${full.channelId}`)).json()) as ApiStream;
  expect(ch.status).toBe('live');
  // the other channel keeps recording
  expect((await recordingOf(other.channelId))!.durationMs - failedAt.other).toBeGreaterThanOrEqual(2000);
  // the failed one stays listed, its length frozen at what reached the disk
  const stuck = (await recordingOf(full.channelId))!;
  expect(stuck.endedAt).toBeNull();
  expect(stuck.durationMs).toBeGreaterThan(1000);

  expect(await pubFull.stop()).toBe(200);
  expect(await pubOther.stop()).toBe(200);
  const sentOther = pubOther.counters.frames;
  viewer.close();
  const [doneFull, doneOther] = await Promise.all(
    [full.channelId, other.channelId].map((id) =>
      until(
        () => recordingOf(id),
        (r) => !!r?.endedAt,
        30_000,
        'recordings finished',
      ),
    ),
  );

  // the full one plays as far as it got (its download file could not be built on the full disk: playback serves the live file)
  const path = join(scratch, 'full.mp4');
  expect((await server.saveFile(doneFull!.playbackUrl, path)).res.status).toBe(200);
  const { stdout, stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-']);
  expect(stdout + stderr).toBe('');
  const { stdout: dur } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', path]);
  expect(Number(dur)).toBeGreaterThan(1);
  expect(Math.abs(Number(dur) * 1000 - doneFull!.durationMs)).toBeLessThan(500);
  // the other one is whole: the full session's length
  expect(Math.abs(doneOther!.durationMs - (sentOther / 30) * 1000)).toBeLessThan(1500);
  expect(await enospcCount()).toBe(1);
}, 90_000);
