import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_KINDS } from '@whipcast/db/testing';
import { hashToken } from './auth/tokens.ts';
import { startTestServer, type TestServer } from './testing.ts';

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

describe.each(TEST_DATABASE_KINDS)('HTTP API on %s', (db) => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ db });
  });
  afterAll(async () => {
    await s?.close();
  });

  describe('accounts', () => {
    it('registers, logs in, logs out', async () => {
      const reg = await s.api('/api/auth/register', { method: 'POST', ...json({ username: 'Carol', password: 'hunter2hunter2' }) });
      expect(reg.status).toBe(201);
      const session = (await reg.json()) as { token: string; user: { username: string }; expiresAt: string };
      expect(session.user.username).toBe('Carol');
      expect(new Date(session.expiresAt).getTime()).toBeGreaterThan(Date.now() + 3600_000);

      const login = await s.api('/api/auth/login', { method: 'POST', ...json({ username: 'carol', password: 'hunter2hunter2' }) });
      expect(login.status).toBe(200);
      const { token } = (await login.json()) as { token: string };
      expect(token).not.toBe(session.token);
      const auth = { authorization: `Bearer ${token}` };
      expect((await s.api('/api/live/streams/me', { headers: auth })).status).toBe(200);

      expect((await s.api('/api/auth/logout', { method: 'POST', headers: auth })).status).toBe(204);
      expect((await s.api('/api/live/streams/me', { headers: auth })).status).toBe(401);
      // The other session is unaffected.
      expect((await s.api('/api/live/streams/me', { headers: { authorization: `Bearer ${session.token}` } })).status).toBe(200);
    });

    it('refuses a taken username, case-insensitively', async () => {
      await s.register('Dave');
      const res = await s.api('/api/auth/register', { method: 'POST', ...json({ username: 'DAVE', password: 'whatever123' }) });
      expect(res.status).toBe(409);
      expect(await res.json()).toEqual({ error: { code: 'username_taken', message: expect.any(String) } });
    });

    it('rejects a wrong password and an unknown user the same way', async () => {
      await s.register('erin');
      const wrong = await s.api('/api/auth/login', { method: 'POST', ...json({ username: 'erin', password: 'not-the-password' }) });
      const unknown = await s.api('/api/auth/login', { method: 'POST', ...json({ username: 'nobody', password: 'not-the-password' }) });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(await wrong.json()).toEqual(await unknown.json());
    });

    it('stores only a slow hash of the password', async () => {
      const { user } = await s.register('frank');
      const row = await s.app.db.users.findByUsername('frank');
      expect(row?.id).toBe(user.id);
      expect(row?.passwordHash).toMatch(/^scrypt\$15\$8\$1\$/);
      expect(row?.passwordHash).not.toContain('correct horse');
    });

    it('rejects invalid, missing and expired tokens with 401 and WWW-Authenticate', async () => {
      const missing = await s.api('/api/live/streams/me');
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');

      const invalid = await s.api('/api/live/streams/me', { headers: { authorization: 'Bearer wcs_garbage' } });
      expect(invalid.status).toBe(401);
      expect(invalid.headers.get('www-authenticate')).toContain('invalid_token');

      const { user } = await s.register();
      const expired = 'wcs_expired-token-for-test';
      await s.app.db.sessions.create(user.id, hashToken(expired), new Date(Date.now() - 1000));
      const res = await s.api('/api/live/streams/me', { headers: { authorization: `Bearer ${expired}` } });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_token');
    });

    it('answers bad bodies with 400/413/415 and clear messages', async () => {
      const short = await s.api('/api/auth/register', { method: 'POST', ...json({ username: 'ab', password: 'x' }) });
      expect(short.status).toBe(400);
      const msg = ((await short.json()) as { error: { code: string; message: string } }).error;
      expect(msg.code).toBe('invalid_body');
      expect(msg.message).toMatch(/username/);
      expect(msg.message).toMatch(/password/);

      const badJson = await s.api('/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"username":',
      });
      expect(badJson.status).toBe(400);
      expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe('invalid_json');

      const wrongType = await s.api('/api/auth/login', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
      expect(wrongType.status).toBe(415);

      const huge = await s.api('/api/auth/login', { method: 'POST', ...json({ username: 'x'.repeat(10_000), password: 'y' }) });
      expect(huge.status).toBe(413);
      expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');

      const enormous = await fetch(`${s.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: 'x'.repeat(2_000_000),
      }).catch((e: unknown) => e);
      // Either a 413 or the connection closed on us: never a 2xx, and the server keeps serving.
      if (enormous instanceof Response) expect(enormous.status).toBe(413);
      expect((await s.api('/healthz')).status).toBe(200);
    });
  });

  describe('channels', () => {
    it('creates the channel with its room and key on first GET /me, once', async () => {
      const alice = await s.register('alice');
      const [a, b] = await Promise.all([
        s.api('/api/live/streams/me', { headers: alice.auth }),
        s.api('/api/live/streams/me', { headers: alice.auth }),
      ]);
      const first = (await a.json()) as { id: string };
      const second = (await b.json()) as { id: string };
      expect(first.id).toBe(second.id);
      expect(first).toMatchObject({ status: 'offline', viewerCount: 0, startedAt: null, owner: { username: 'alice' } });
      expect(await s.app.db.rooms.get(first.id)).not.toBeNull();
      expect(await s.app.db.streamKeys.get(first.id)).not.toBeNull();
    });

    it('lets only the owner edit title and description', async () => {
      const owner = await s.register();
      const other = await s.register();
      const { id } = (await (await s.api('/api/live/streams/me', { headers: owner.auth })).json()) as { id: string };

      const edit = await s.api(`/api/live/streams/${id}`, {
        method: 'PUT',
        ...json({ title: 'Night jam', description: 'synths' }, owner.auth),
      });
      expect(edit.status).toBe(200);
      expect(await edit.json()).toMatchObject({ title: 'Night jam', description: 'synths' });

      const forbidden = await s.api(`/api/live/streams/${id}`, { method: 'PUT', ...json({ title: 'mine now' }, other.auth) });
      expect(forbidden.status).toBe(403);
      const anonymous = await s.api(`/api/live/streams/${id}`, { method: 'PUT', ...json({ title: 'x' }) });
      expect(anonymous.status).toBe(401);
      const tooLong = await s.api(`/api/live/streams/${id}`, { method: 'PUT', ...json({ title: 'x'.repeat(141) }, owner.auth) });
      expect(tooLong.status).toBe(400);
      const missing = await s.api('/api/live/streams/00000000-0000-4000-8000-000000000000', {
        method: 'PUT',
        ...json({ title: 'x' }, owner.auth),
      });
      expect(missing.status).toBe(404);

      const pub = await s.api(`/api/live/streams/${id}`);
      expect(await pub.json()).toMatchObject({ id, title: 'Night jam', status: 'offline' });
      expect((await s.api('/api/live/streams/not-a-uuid')).status).toBe(404);
    });

    it("lists the bans and timeouts in the owner's chat, and tells a viewer their own", async () => {
      const owner = await s.register();
      const banned = await s.register();
      const timedOut = await s.register();
      const free = await s.register();
      const { id } = (await (await s.api('/api/live/streams/me', { headers: owner.auth })).json()) as { id: string };
      expect(await (await s.api('/api/live/streams/me/bans', { headers: owner.auth })).json()).toEqual({ bans: [] });
      const until = new Date(Date.now() + 600_000);
      await s.app.db.rooms.ban(id, banned.user.id, { expiresAt: null, reason: 'ban', by: owner.user.id });
      await s.app.db.rooms.ban(id, timedOut.user.id, { expiresAt: until, reason: 'timeout', by: owner.user.id });
      // an expired timeout is not listed
      await s.app.db.rooms.ban(id, free.user.id, { expiresAt: new Date(Date.now() - 1000), reason: 'timeout', by: owner.user.id });

      const { bans } = (await (await s.api('/api/live/streams/me/bans', { headers: owner.auth })).json()) as {
        bans: { userId: string; username: string; kind: string; until: string | null }[];
      };
      expect(bans.sort((a, b) => a.kind.localeCompare(b.kind))).toEqual([
        { userId: banned.user.id, username: banned.user.username, kind: 'ban', until: null },
        { userId: timedOut.user.id, username: timedOut.user.username, kind: 'timeout', until: until.toISOString() },
      ]);
      // another user's own channel has no bans: the list is always the caller's channel
      expect(await (await s.api('/api/live/streams/me/bans', { headers: banned.auth })).json()).toEqual({ bans: [] });
      expect((await s.api('/api/live/streams/me/bans')).status).toBe(401);

      const mine = async (who: { auth: { authorization: string } }) =>
        ((await (await s.api(`/api/live/streams/${id}/chat/restriction`, { headers: who.auth })).json()) as { restriction: unknown })
          .restriction;
      expect(await mine(timedOut)).toMatchObject({ kind: 'timeout', until: until.toISOString() });
      expect(await mine(banned)).toMatchObject({ kind: 'ban', until: null });
      expect(await mine(free)).toBeNull();
      expect((await s.api(`/api/live/streams/${id}/chat/restriction`)).status).toBe(401);
    });

    it('shows the key again on demand and rotation invalidates the old key at once', async () => {
      const u = await s.register();
      const k1 = (await (await s.api('/api/live/streams/me/key', { headers: u.auth })).json()) as { streamKey: string; whipUrl: string };
      expect(k1.whipUrl).toBe(`${s.url}/whip`);
      const again = (await (await s.api('/api/live/streams/me/key', { headers: u.auth })).json()) as { streamKey: string };
      expect(again.streamKey).toBe(k1.streamKey);
      const me = (await (await s.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
      expect(await s.app.channels.authenticateStreamKey(k1.streamKey)).toEqual({ streamId: me.id });

      const rotated = await s.api('/api/live/streams/me/key', { method: 'POST', headers: u.auth });
      expect(rotated.status).toBe(200);
      const k2 = (await rotated.json()) as { streamKey: string };
      expect(k2.streamKey).not.toBe(k1.streamKey);
      expect(await s.app.channels.authenticateStreamKey(k1.streamKey)).toBeNull();
      expect(await s.app.channels.authenticateStreamKey(k2.streamKey)).toEqual({ streamId: me.id });
      expect(((await (await s.api('/api/live/streams/me/key', { headers: u.auth })).json()) as { streamKey: string }).streamKey).toBe(
        k2.streamKey,
      );

      // The database never holds the key itself.
      const { rows } = { rows: await s.app.db.sql`SELECT * FROM stream_keys WHERE stream_id = ${me.id}` };
      expect(JSON.stringify(rows)).not.toContain(k2.streamKey.slice(4, 20));
    });

    it('lists live channels with the status the media layer sets', async () => {
      const u = await s.register();
      const me = (await (await s.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
      expect(((await (await s.api('/api/live/streams')).json()) as { streams: { id: string }[] }).streams.map((x) => x.id)).not.toContain(
        me.id,
      );
      await s.app.db.streams.setLive(me.id);
      const list = (await (await s.api('/api/live/streams')).json()) as { streams: { id: string; status: string; startedAt: string }[] };
      const entry = list.streams.find((x) => x.id === me.id);
      expect(entry).toMatchObject({ status: 'live', startedAt: expect.any(String) });
      await s.app.db.streams.setOffline(me.id);
    });

    it('fails loudly and leaves no stream when its room cannot be created', async () => {
      const u = await s.register();
      await s.app.db.sql.unsafe(`
        CREATE OR REPLACE FUNCTION api_test_fail_room() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'room creation failed (test)'; END $$ LANGUAGE plpgsql`);
      await s.app.db.sql.unsafe(
        `CREATE TRIGGER api_test_fail_room BEFORE INSERT ON rooms FOR EACH ROW EXECUTE FUNCTION api_test_fail_room()`,
      );
      try {
        const res = await s.api('/api/live/streams/me', { headers: u.auth });
        expect(res.status).toBe(500);
        expect(await res.json()).toEqual({ error: { code: 'internal', message: 'Internal server error' } });
        expect(await s.app.db.streams.findByOwner(u.user.id)).toBeNull();
      } finally {
        await s.app.db.sql.unsafe(`DROP TRIGGER api_test_fail_room ON rooms`);
      }
      // Once the fault is gone the channel is created normally, room included.
      const ok = (await (await s.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
      expect(await s.app.db.rooms.get(ok.id)).not.toBeNull();
    });
  });

  describe('operations', () => {
    it('answers health, readiness, metrics, openapi, 404 and 405', async () => {
      expect(await (await s.api('/healthz')).json()).toEqual({ status: 'ok' });
      const ready = await s.api('/readyz');
      // No media layer in this server: not ready, and it says why.
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'not_ready', checks: { database: true, media: false } });
      const metrics = await (await s.api('/metrics')).text();
      expect(metrics).toMatch(/whipcast_http_requests_total\{method="GET",status="200"\} \d+/);
      const doc = (await (await s.api('/api/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toContain('/api/live/streams/{id}');
      const notFound = await s.api('/api/nope');
      expect(notFound.status).toBe(404);
      expect(await notFound.json()).toEqual({ error: { code: 'not_found', message: expect.any(String) } });
      const notAllowed = await s.api('/api/live/streams', { method: 'DELETE' });
      expect(notAllowed.status).toBe(405);
      expect(notAllowed.headers.get('allow')).toContain('GET');
    });
  });
});
