import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '@whipcast/db';
import { openTestDatabase } from '@whipcast/db/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RecordingSweeper } from './recording-sweeper.ts';

const MB = 1024 * 1024;
/** Ages are counted back from one instant, so two things made "4 days ago" are exactly the same age. */
const NOW = Date.now();
const daysBack = (days: number) => new Date(NOW - days * 86_400_000);

describe('RecordingSweeper', () => {
  let db: Database;
  let dir: string;
  beforeAll(async () => {
    db = await openTestDatabase('embedded');
  });
  afterAll(async () => {
    await db?.close();
  });
  beforeEach(async () => {
    // every test starts from an empty recordings tree and no rows (the quota counts all of them)
    await db.sql`DELETE FROM recordings`;
    await db.sql`DELETE FROM clips`;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'whipcast-sweep-'));
  });

  async function channel() {
    const user = await db.users.create(`s${randomBytes(4).toString('hex')}`, 'scrypt$test');
    const channelId = randomUUID();
    await db.streams.createChannel({ streamId: channelId, ownerId: user.id, keyHash: randomBytes(32), keySalt: randomBytes(32) });
    await mkdir(join(dir, channelId), { recursive: true });
    return { user, channelId };
  }

  /** A recording of `mb` MB on disk (live file, download file, poster) that started `daysAgo` days ago. */
  async function recording(channelId: string, daysAgo: number, mb: number, finished = true) {
    const id = randomUUID();
    await db.recordings.create({ id, streamId: channelId, container: 'mp4' });
    await db.sql`UPDATE recordings SET started_at = ${daysBack(daysAgo)} WHERE id = ${id}`;
    const files = [`${id}.mp4`, `${id}.dl.mp4`, `${id}.jpg`].map((f) => join(dir, channelId, f));
    for (const f of files) await writeFile(f, Buffer.alloc(16));
    if (finished) await db.recordings.finish(id, { durationMs: 1000, bytes: mb * MB, downloadReady: true, hasPoster: true });
    else await db.recordings.progress(id, { durationMs: 1000, bytes: mb * MB });
    return { id, files };
  }

  async function clip(channelId: string, creatorId: string, daysAgo: number, mb: number) {
    const id = randomUUID();
    await db.clips.create({ id, streamId: channelId, creatorId, container: 'mp4', durationMs: 10_000, bytes: mb * MB, hasPoster: true });
    await db.sql`UPDATE clips SET created_at = ${daysBack(daysAgo)} WHERE id = ${id}`;
    await mkdir(join(dir, 'clips'), { recursive: true });
    const files = [`${id}.mp4`, `${id}.jpg`].map((f) => join(dir, 'clips', f));
    for (const f of files) await writeFile(f, Buffer.alloc(16));
    return { id, files };
  }

  async function sweepOnce(options: { retentionDays: number; quotaBytes?: number }) {
    const sweeper = new RecordingSweeper(db, { dir, intervalMs: 3600_000, ...options });
    await sweeper.sweep();
    await sweeper.close();
    await sweeper.close();
  }

  const gone = async (r: { id: string; files: string[] }) =>
    (await db.recordings.get(r.id)) === null && (await db.clips.get(r.id)) === null && r.files.every((f) => !existsSync(f));

  it('deletes finished recordings and clips past retention, rows and files, and nothing younger', async () => {
    const { user, channelId } = await channel();
    const old = await recording(channelId, 9, 1);
    const oldClip = await clip(channelId, user.id, 8, 1);
    const young = await recording(channelId, 2, 1);
    const writing = await recording(channelId, 30, 1, false);
    await sweepOnce({ retentionDays: 7 });
    expect(await gone(old)).toBe(true);
    expect(await gone(oldClip)).toBe(true);
    expect(await gone(young)).toBe(false);
    // a recording still being written is never deleted, however old
    expect(await gone(writing)).toBe(false);
    expect(writing.files.every((f) => existsSync(f))).toBe(true);
  });

  it('keeps everything with retention 0 and no quota', async () => {
    const { user, channelId } = await channel();
    const r = await recording(channelId, 400, 50);
    const c = await clip(channelId, user.id, 400, 50);
    await sweepOnce({ retentionDays: 0 });
    expect(await gone(r)).toBe(false);
    expect(await gone(c)).toBe(false);
  });

  it('beyond the quota deletes the oldest first until it fits; a recording being written stays', async () => {
    const { user, channelId } = await channel();
    const r5 = await recording(channelId, 5, 10);
    const c4 = await clip(channelId, user.id, 4, 10);
    const r3 = await recording(channelId, 3, 10);
    const r1 = await recording(channelId, 1, 10);
    const live = await recording(channelId, 6, 10, false);
    // 50 MB in all, quota 25 MB: r5, c4, r3 go (oldest first); the live one stays though it is oldest
    await sweepOnce({ retentionDays: 0, quotaBytes: 25 * MB });
    expect([await gone(r5), await gone(c4), await gone(r3), await gone(r1), await gone(live)]).toEqual([true, true, true, false, false]);
    expect(await db.recordings.totalBytes()).toBe(20 * MB);
  });

  it('beyond the quota goes by age, not by the order things were made, over recordings and clips alike', async () => {
    const { user, channelId } = await channel();
    // made newest first, so an unordered or insertion-ordered sweep would pick the wrong ones
    const cNew = await clip(channelId, user.id, 1, 10);
    const rNew = await recording(channelId, 2, 10);
    const cTie = await clip(channelId, user.id, 4, 10);
    const rTie = await recording(channelId, 4, 10);
    const cOld = await clip(channelId, user.id, 6, 10);
    const rOld = await recording(channelId, 5, 10);
    // 60 MB, quota 35 MB: the 6-day clip, the 5-day recording, then of the two 4-day ones the recording
    await sweepOnce({ retentionDays: 0, quotaBytes: 35 * MB });
    expect({
      cOld: await gone(cOld),
      rOld: await gone(rOld),
      rTie: await gone(rTie),
      cTie: await gone(cTie),
      rNew: await gone(rNew),
      cNew: await gone(cNew),
    }).toEqual({ cOld: true, rOld: true, rTie: true, cTie: false, rNew: false, cNew: false });
    expect(await db.recordings.totalBytes()).toBe(30 * MB);
  });

  it('under the quota deletes nothing', async () => {
    const { channelId } = await channel();
    const a = await recording(channelId, 5, 10);
    const b = await recording(channelId, 3, 10);
    await sweepOnce({ retentionDays: 0, quotaBytes: 20 * MB });
    expect([await gone(a), await gone(b)]).toEqual([false, false]);
  });
});
