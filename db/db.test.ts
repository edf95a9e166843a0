import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUniqueViolation, type Database } from './index.ts';
import { createTestChannel, openTestDatabase, TEST_DATABASE_KINDS } from './testing.ts';

const hash = () => randomBytes(32);

describe.each(TEST_DATABASE_KINDS)('data layer on %s', (kind) => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await db?.close();
  });

  const newChannel = (name?: string) => createTestChannel(db, name);

  it('reports which kind of database it is', () => {
    expect(db.kind).toBe(kind);
  });

  it('creates users with case-insensitively unique names', async () => {
    const user = await db.users.create('Alice', 'scrypt$x');
    expect(user).toMatchObject({ username: 'Alice' });
    expect(user.createdAt).toBeInstanceOf(Date);
    expect((await db.users.findByUsername('alice'))?.id).toBe(user.id);
    const dup = await db.users.create('ALICE', 'scrypt$y').catch((e: unknown) => e);
    expect(isUniqueViolation(dup)).toBe(true);
  });

  it('finds sessions only until they expire', async () => {
    const { user } = await newChannel();
    const live = hash();
    const expired = hash();
    await db.sessions.create(user.id, live, new Date(Date.now() + 60_000));
    await db.sessions.create(user.id, expired, new Date(Date.now() - 1_000));
    expect((await db.sessions.findUser(live))?.id).toBe(user.id);
    expect(await db.sessions.findUser(expired)).toBeNull();
    expect(await db.sessions.deleteExpired()).toBeGreaterThanOrEqual(1);
    expect((await db.sql`SELECT 1 FROM sessions WHERE token_hash = ${expired}`).length).toBe(0);
    expect((await db.sessions.findUser(live))?.id).toBe(user.id);
    await db.sessions.delete(live);
    expect(await db.sessions.findUser(live)).toBeNull();
  });

  it('creates a channel with its room and key, one per owner', async () => {
    const { user, streamId, keyHash } = await newChannel();
    const stream = await db.streams.findByOwner(user.id);
    expect(stream).toMatchObject({ id: streamId, ownerUsername: user.username, status: 'offline', title: '' });
    expect((await db.rooms.get(streamId))?.ownerId).toBe(user.id);
    expect(await db.streamKeys.findStreamId(keyHash)).toBe(streamId);
    const second = await db.streams
      .createChannel({ streamId: randomUUID(), ownerId: user.id, keyHash: hash(), keySalt: hash() })
      .catch((e: unknown) => e);
    expect(isUniqueViolation(second)).toBe(true);
  });

  it('leaves no stream behind when the room cannot be created', async () => {
    const user = await db.users.create(`atomic${randomBytes(3).toString('hex')}`, 'scrypt$x');
    // A real failure inside the transaction: a trigger that rejects this owner's room.
    await db.sql.unsafe(`
      CREATE OR REPLACE FUNCTION test_fail_room() RETURNS trigger AS $$
      BEGIN
        IF (SELECT owner_id FROM streams WHERE id = NEW.id) = '${user.id}' THEN
          RAISE EXCEPTION 'room creation failed (test)';
        END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql`);
    await db.sql.unsafe(`CREATE TRIGGER test_fail_room BEFORE INSERT ON rooms FOR EACH ROW EXECUTE FUNCTION test_fail_room()`);
    try {
      const err = await db.streams
        .createChannel({ streamId: randomUUID(), ownerId: user.id, keyHash: hash(), keySalt: hash() })
        .catch((e: unknown) => e);
      expect(String(err)).toMatch(/room creation failed/);
      expect(await db.streams.findByOwner(user.id)).toBeNull();
    } finally {
      await db.sql.unsafe(`DROP TRIGGER test_fail_room ON rooms`);
    }
  });

  it('rotating a key makes the old one unknown at once', async () => {
    const { streamId, keyHash } = await newChannel();
    const next = hash();
    await db.streamKeys.replace(streamId, { keyHash: next, salt: hash() });
    expect(await db.streamKeys.findStreamId(keyHash)).toBeNull();
    expect(await db.streamKeys.findStreamId(next)).toBe(streamId);
    expect((await db.streamKeys.get(streamId))?.keyHash.equals(next)).toBe(true);
  });

  it('tracks live/offline status and keeps started_at across a reconnect', async () => {
    const { streamId } = await newChannel();
    await db.streams.update(streamId, { title: 'Jam', description: 'late night' });
    await db.streams.setLive(streamId);
    const live = await db.streams.get(streamId);
    expect(live).toMatchObject({ status: 'live', title: 'Jam', description: 'late night', endedAt: null });
    expect(live?.startedAt).toBeInstanceOf(Date);
    await db.streams.setLive(streamId);
    expect((await db.streams.get(streamId))?.startedAt?.getTime()).toBe(live?.startedAt?.getTime());
    expect((await db.streams.listLive()).map((s) => s.id)).toContain(streamId);
    await db.streams.setOffline(streamId);
    const off = await db.streams.get(streamId);
    expect(off?.status).toBe('offline');
    expect(off?.endedAt).toBeInstanceOf(Date);
    expect((await db.streams.listLive()).map((s) => s.id)).not.toContain(streamId);
  });

  it('stores chat with server ids, pages history newest first, hides deleted messages', async () => {
    const { user, streamId } = await newChannel();
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await db.chat.insert(streamId, user.id, `msg ${i}`));
    expect(sent.map((m) => m.id)).toEqual([...sent.map((m) => m.id)].sort((a, b) => a - b));
    expect(typeof sent[0]!.id).toBe('number');
    expect(sent[0]).toMatchObject({ username: user.username, roomId: streamId, body: 'msg 0' });
    const page1 = await db.chat.history(streamId, { limit: 3 });
    expect(page1.map((m) => m.body)).toEqual(['msg 4', 'msg 3', 'msg 2']);
    const page2 = await db.chat.history(streamId, { limit: 3, beforeId: page1.at(-1)!.id });
    expect(page2.map((m) => m.body)).toEqual(['msg 1', 'msg 0']);
    expect(await db.chat.delete(streamId, sent[4]!.id, user.id)).toBe(true);
    expect(await db.chat.delete(streamId, sent[4]!.id, user.id)).toBe(false);
    expect((await db.chat.history(streamId, { limit: 1 }))[0]?.body).toBe('msg 3');
    expect((await db.chat.lastMessageAt(streamId, user.id))?.getTime()).toBe(sent[4]!.createdAt.getTime());
  });

  it('bans and timeouts apply until they expire or are lifted', async () => {
    const { user: owner, streamId } = await newChannel();
    const viewer = await db.users.create(`v${randomBytes(4).toString('hex')}`, 'scrypt$x');
    expect(await db.rooms.activeBan(streamId, viewer.id)).toBeNull();
    await db.rooms.ban(streamId, viewer.id, { expiresAt: new Date(Date.now() - 1000), reason: 'old', by: owner.id });
    expect(await db.rooms.activeBan(streamId, viewer.id)).toBeNull();
    await db.rooms.ban(streamId, viewer.id, { expiresAt: new Date(Date.now() + 60_000), reason: 'spam', by: owner.id });
    expect(await db.rooms.activeBan(streamId, viewer.id)).toMatchObject({ reason: 'spam' });
    await db.rooms.ban(streamId, viewer.id, { expiresAt: null, reason: 'ban', by: owner.id });
    expect((await db.rooms.activeBan(streamId, viewer.id))?.expiresAt).toBeNull();
    expect(await db.rooms.unban(streamId, viewer.id)).toBe(true);
    expect(await db.rooms.activeBan(streamId, viewer.id)).toBeNull();
    await db.rooms.setSlowMode(streamId, 10);
    expect((await db.rooms.get(streamId))?.slowModeSeconds).toBe(10);
  });

  it('registers nodes and channel origins; a lost node takes its channels offline, once', async () => {
    const a = `node-a-${randomBytes(3).toString('hex')}`;
    const b = `node-b-${randomBytes(3).toString('hex')}`;
    await db.cluster.heartbeat({ id: a, url: 'http://a' });
    await db.cluster.heartbeat({ id: b, url: 'http://b' });
    expect((await db.cluster.aliveNodes(60)).map((n) => n.id)).toEqual(expect.arrayContaining([a, b]));
    const one = await newChannel();
    const two = await newChannel();
    await db.cluster.claimOrigin(one.streamId, a);
    await db.streams.setLive(one.streamId);
    await db.cluster.claimOrigin(two.streamId, b);
    await db.streams.setLive(two.streamId);
    expect(await db.cluster.originOf(one.streamId, 60)).toEqual({ id: a, url: 'http://a' });

    // OBS re-homes channel two onto node a: b's late release changes nothing
    await db.cluster.claimOrigin(two.streamId, a);
    expect(await db.cluster.releaseOrigin(two.streamId, b)).toBe(false);
    expect((await db.streams.get(two.streamId))?.status).toBe('live');

    // node a is lost: both its channels go offline, reported to one caller only
    const lost = await db.cluster.expire(60, [a]);
    expect(lost.nodes).toEqual([a]);
    expect(lost.streams).toEqual(expect.arrayContaining([one.streamId, two.streamId]));
    expect((await db.cluster.expire(60, [a])).streams).not.toContain(one.streamId);
    expect((await db.streams.get(one.streamId))?.status).toBe('offline');
    expect(await db.cluster.originOf(one.streamId, 60)).toBeNull();

    // a normal stop: the origin releases, the channel goes offline
    await db.cluster.claimOrigin(one.streamId, b);
    await db.streams.setLive(one.streamId);
    expect(await db.cluster.releaseOrigin(one.streamId, b)).toBe(true);
    expect((await db.streams.get(one.streamId))?.status).toBe('offline');
    // heartbeats expire by the database clock
    expect((await db.cluster.aliveNodes(0)).map((n) => n.id)).not.toContain(b);
  });

  it('migrations are idempotent', async () => {
    const { migrate } = await import('./migrate.ts');
    expect(await migrate(db.sql)).toEqual([]);
  });
});
