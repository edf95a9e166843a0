/**
 * A crash mid-recording (issue #14): whipcast runs as a child process over a
 * scratch Postgres, an OBS-like publisher sends frame-numbered H.264 + Opus,
 * the process is killed with SIGKILL while recording, and after a restart the
 * recording is listed (ended, with its real duration) and its download plays
 * every frame in order up to within 2 s of the kill, read back off the picture.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScratchPostgres } from '@whipcast/db/testing';
import { framesOfFile, numberedH264Fixture, ObsPublisher, startWhipcastProcess, type WhipcastProcess } from '@whipcast/testkit';
import { afterAll, expect, it } from 'vitest';
import type { ApiAuthResult, ApiRecording, ApiRecordingList, ApiStream } from './api.ts';

const VIDEO = { seconds: 30 };
const FPS = 30;
const recordingsDir = mkdtempSync(join(tmpdir(), 'whipcast-crash-recordings-'));
const scratchDir = mkdtempSync(join(tmpdir(), 'whipcast-crash-dl-'));
const nodes: WhipcastProcess[] = [];
let dropDb: (() => Promise<void>) | undefined;

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await dropDb?.();
  rmSync(recordingsDir, { recursive: true, force: true });
  rmSync(scratchDir, { recursive: true, force: true });
});

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new Error(`${res.url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function until<T>(get: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('lists a recording cut by kill -9 after the restart, playable to within 2 s of the kill', async () => {
  await numberedH264Fixture(VIDEO);
  const db = await createScratchPostgres();
  dropDb = db.drop;
  const env = {
    DATABASE_URL: db.url,
    WHIPCAST_SECRET: randomBytes(24).toString('hex'),
    RECORDINGS_DIR: recordingsDir,
  };
  const first = await startWhipcastProcess(env);
  nodes.push(first);
  const reg = await json<ApiAuthResult>(
    await fetch(`${first.url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: `crash_${randomBytes(3).toString('hex')}`, password: 'correct horse battery' }),
    }),
  );
  const auth = { authorization: `Bearer ${reg.token}` };
  const me = await json<ApiStream>(await fetch(`${first.url}/api/live/streams/me`, { headers: auth }));
  const { streamKey } = await json<{ streamKey: string }>(await fetch(`${first.url}/api/live/streams/me/key`, { headers: auth }));
  const list = async (base: string) =>
    (await json<ApiRecordingList>(await fetch(`${base}/api/live/streams/${me.id}/recordings`))).recordings;

  const pub = await ObsPublisher.publish({ url: `${first.url}/whip`, token: streamKey, numbered: true, video: VIDEO });
  await pub.connected();
  await until(async () => ((await list(first.url))[0]?.durationMs ?? 0) >= 6000 || undefined, 20_000, 'six seconds recorded');
  const sentAtKill = pub.counters.frames;
  await first.kill();
  pub.drop();

  const second = await startWhipcastProcess(env);
  nodes.push(second);
  const rec = await until<ApiRecording>(
    async () => {
      const r = (await list(second.url))[0];
      return r?.endedAt ? r : undefined;
    },
    30_000,
    'the recording recovered',
  );
  // the number the publisher had sent when the process died: the file must reach to within 2 s of it
  const lastSent = sentAtKill - 1;
  expect(rec.durationMs).toBeGreaterThan(((lastSent - 2 * FPS) / FPS) * 1000);
  const res = await fetch(`${second.url}${rec.downloadUrl}`);
  expect(res.status).toBe(200);
  const path = join(scratchDir, 'recovered.mp4');
  writeFileSync(path, Buffer.from(await res.arrayBuffer()));
  const frames = (await framesOfFile(path)).filter((n): n is number => n !== null);
  expect(frames[0]).toBeLessThanOrEqual(2 * FPS); // from the session's first keyframe
  for (let i = 1; i < frames.length; i++) expect(frames[i]).toBe(frames[i - 1]! + 1);
  expect(frames.at(-1)!).toBeGreaterThanOrEqual(lastSent - 2 * FPS);
  expect(Math.abs(rec.durationMs - (frames.length / FPS) * 1000)).toBeLessThan(500);
}, 120_000);
