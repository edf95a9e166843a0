import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from './index.ts';
import { createTestChannel, openTestDatabase, TEST_DATABASE_KINDS } from './testing.ts';

describe.each(TEST_DATABASE_KINDS)('recordings and clips on %s', (kind) => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.close();
  });

  const newChannel = () => createTestChannel(db);

  it('saves past broadcasts by default; the owner can switch it off', async () => {
    const { streamId } = await newChannel();
    expect(await db.recordings.saveEnabled(streamId)).toBe(true);
    await db.recordings.setSaveEnabled(streamId, false);
    expect(await db.recordings.saveEnabled(streamId)).toBe(false);
    expect(await db.recordings.saveEnabled(randomUUID())).toBe(false);
  });

  it('records a session from unfinished to finished, titled as the channel was', async () => {
    const { streamId } = await newChannel();
    await db.streams.update(streamId, { title: 'Morning show', description: '' });
    const id = randomUUID();
    const created = await db.recordings.create({ id, streamId, container: 'mp4' });
    expect(created).toMatchObject({ id, streamId, title: 'Morning show', endedAt: null, durationMs: 0, bytes: 0 });
    expect((await db.recordings.listUnfinished()).map((r) => r.id)).toContain(id);

    await db.recordings.progress(id, { durationMs: 4_000.4, bytes: 5_000_000_000 });
    expect(await db.recordings.get(id)).toMatchObject({ durationMs: 4_000, bytes: 5_000_000_000 });

    await db.recordings.finish(id, { durationMs: 20_000, bytes: 6_000_000_000, downloadReady: true, hasPoster: true });
    const done = await db.recordings.get(id);
    expect(done?.endedAt).toBeInstanceOf(Date);
    expect(done).toMatchObject({ durationMs: 20_000, bytes: 6_000_000_000, downloadReady: true, hasPoster: true });
    expect((await db.recordings.listUnfinished()).map((r) => r.id)).not.toContain(id);
    expect((await db.recordings.listByStream(streamId)).map((r) => r.id)).toEqual([id]);
    expect(await db.recordings.totalBytes()).toBeGreaterThanOrEqual(6_000_000_000);

    await expect(db.recordings.create({ id: randomUUID(), streamId: randomUUID(), container: 'mp4' })).rejects.toThrow(/no channel/);
  });

  it('lists finished recordings oldest first and deletes them', async () => {
    const { streamId } = await newChannel();
    const ids: string[] = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) {
      await db.recordings.create({ id, streamId, container: 'webm' });
      await db.sql`UPDATE recordings SET started_at = now() - ${`${10 - i} days`}::interval WHERE id = ${id}`;
      if (i < 2) await db.recordings.finish(id, { durationMs: 1, bytes: 1, downloadReady: false, hasPoster: false });
    }
    const old = (await db.recordings.listFinishedBefore(new Date(Date.now() - 7 * 86_400_000))).map((r) => r.id);
    // the unfinished one (still being written) is never offered for deletion
    expect(old.filter((id) => ids.includes(id))).toEqual([ids[0], ids[1]]);
    const oldest = (await db.recordings.listFinishedOldestFirst()).map((r) => r.id).filter((id) => ids.includes(id));
    expect(oldest).toEqual([ids[0], ids[1]]);
    expect(await db.recordings.delete(ids[0]!)).toBe(true);
    expect(await db.recordings.delete(ids[0]!)).toBe(false);
    expect(await db.recordings.get(ids[0]!)).toBeNull();
    expect((await db.recordings.listByStream(streamId)).map((r) => r.id)).toEqual([ids[2], ids[1]]);
  });

  it('keeps clips with their creator, counts them per user, and outlives a deleted account', async () => {
    const { streamId } = await newChannel();
    const viewer = await db.users.create(`c${randomBytes(4).toString('hex')}`, 'scrypt$test');
    const id = randomUUID();
    const clip = await db.clips.create({
      id,
      streamId,
      creatorId: viewer.id,
      container: 'mp4',
      durationMs: 10_000,
      bytes: 3_000_000,
      hasPoster: true,
    });
    expect(clip).toMatchObject({ id, streamId, creatorId: viewer.id, creatorUsername: viewer.username, bytes: 3_000_000 });
    expect(clip.createdAt).toBeInstanceOf(Date);
    expect(await db.clips.countByCreatorSince(viewer.id, new Date(Date.now() - 60_000))).toBe(1);
    expect(await db.clips.countByCreatorSince(viewer.id, new Date(Date.now() + 60_000))).toBe(0);
    expect((await db.clips.listOldestFirst()).map((c) => c.id)).toContain(id);
    expect((await db.clips.listBefore(new Date(Date.now() + 60_000))).map((c) => c.id)).toContain(id);

    await db.sql`DELETE FROM users WHERE id = ${viewer.id}`;
    expect(await db.clips.get(id)).toMatchObject({ creatorId: null, creatorUsername: null });
    expect(await db.clips.delete(id)).toBe(true);
    expect(await db.clips.get(id)).toBeNull();
  });

  it('drops a channel’s recordings and clips with the channel', async () => {
    const { user, streamId } = await newChannel();
    const rid = randomUUID();
    const cid = randomUUID();
    await db.recordings.create({ id: rid, streamId, container: 'mp4' });
    await db.clips.create({ id: cid, streamId, creatorId: user.id, container: 'mp4', durationMs: 1, bytes: 1, hasPoster: false });
    await db.sql`DELETE FROM streams WHERE id = ${streamId}`;
    expect(await db.recordings.get(rid)).toBeNull();
    expect(await db.clips.get(cid)).toBeNull();
  });
});
