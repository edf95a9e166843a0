/**
 * The socket's limits against the attacks that got through them (issue #15):
 * pipelined frames racing the per-socket caps, many sockets from one address,
 * NUL and control characters reaching Postgres, moderation of a user id that
 * does not exist, one client keeping the database busy for everyone, and the
 * close code of an oversized frame. After each, a normal user is still served:
 * health answers within 1 s, a new user signs up and chats.
 */
import { encode } from '@msgpack/msgpack';
import { SocketClient, SocketError } from '@whipcast/testkit';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResult } from './protocol.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';
import { TestSockets } from './test-sockets.ts';

let server: TestServer;
const sockets = new TestSockets(() => server);

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SocketError);
  return (e as SocketError).code;
};

/** What every attack test ends with: the server still serves a normal user, promptly. */
async function stillServesEveryone(srv = server): Promise<void> {
  const t0 = Date.now();
  const health = await fetch(`${srv.url}/healthz`);
  expect(health.status).toBe(200);
  expect(Date.now() - t0).toBeLessThan(1000);
  const fresh = await sockets.userWithSocket(srv);
  await fresh.socket.request({ t: 'chat.join', room: fresh.room });
  const sent = await fresh.socket.request({ t: 'chat.send', room: fresh.room, text: 'still here' });
  expect(sent.message.text).toBe('still here');
  fresh.socket.close();
}

beforeAll(async () => {
  server = await startTestServer({ env: { WS_MESSAGES_PER_SECOND: '200', WS_MAX_SOCKETS_PER_ADDRESS: '1000' } });
});
afterAll(async () => {
  sockets.close();
  await server?.close();
});

describe('caps raced by pipelining', () => {
  it('22 chat.join frames sent at once join 20 rooms, not 22', async () => {
    const rooms: string[] = [];
    for (let i = 0; i < 22; i++) {
      // one at a time: sign-ups share a small password-hashing queue
      const o = await server.register();
      rooms.push(((await (await server.api('/api/live/streams/me', { headers: o.auth })).json()) as { id: string }).id);
    }
    const s = await sockets.connect();
    const results = await Promise.allSettled(rooms.map((room) => s.request({ t: 'chat.join', room })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as SocketError).code);
    expect(refused).toEqual(['rate_limited', 'rate_limited']);
    // leaving one frees a place
    const joined = rooms.filter((_, i) => results[i]!.status === 'fulfilled');
    const left = rooms.filter((_, i) => results[i]!.status === 'rejected');
    await s.request({ t: 'chat.leave', room: joined[0]! });
    await s.request({ t: 'chat.join', room: left[0]! });
    await stillServesEveryone();
  });
});

describe('bounded work per socket', () => {
  it('runs at most a few requests of one socket at once, queues a few more and refuses the rest', async () => {
    const owner = await sockets.userWithSocket();
    await owner.socket.request({ t: 'chat.join', room: owner.room });
    const s = await sockets.connect();
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, () => s.request({ t: 'chat.history', room: owner.room, limit: 50 })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as SocketError);
    expect(ok).toBe(4 + 32); // WS_MAX_REQUESTS_IN_FLIGHT (default 4) + the 32-deep queue
    expect(refused.every((e) => e.code === 'rate_limited' && (e.retryAfterMs ?? 0) > 0)).toBe(true);
    // in order, later: served again
    expect((await s.request({ t: 'chat.history', room: owner.room })).messages).toEqual([]);
  });

  it('20 sockets × 100 chat.history cannot make another user wait', async () => {
    const owner = await sockets.userWithSocket();
    await owner.socket.request({ t: 'chat.join', room: owner.room });
    // a room with a full page of history, so each request does real work
    const srvChat = server.app.db.chat;
    for (let i = 0; i < 60; i++) await srvChat.insert(owner.room, owner.user.id, `message ${i}`);
    const normal = await sockets.userWithSocket();
    await normal.socket.request({ t: 'chat.join', room: owner.room });
    const attackers = await Promise.all(Array.from({ length: 20 }, () => sockets.connect()));
    for (const a of attackers)
      for (let i = 0; i < 100; i++) a.sendRaw(encode({ t: 'chat.history', id: i + 1, room: owner.room, limit: 50 }));
    // while that is being worked off, the normal user asks (several times, each timed)
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await normal.socket.request({ t: 'chat.history', room: owner.room, limit: 50 });
      waits.push(performance.now() - t0);
    }
    waits.sort((a, b) => a - b);
    // on main (no bound): 1.2–2.7 s
    expect(waits[2]).toBeLessThan(500);
    expect(waits[4]).toBeLessThan(1000);
    await stillServesEveryone();
  });
});

describe('text input', () => {
  it('refuses NUL and other control characters in chat (bad_frame), keeps line breaks', async () => {
    const u = await sockets.userWithSocket();
    await u.socket.request({ t: 'chat.join', room: u.room });
    expect(await codeOf(u.socket.request({ t: 'chat.send', room: u.room, text: 'a\u0000b' }))).toBe('bad_frame');
    expect(await codeOf(u.socket.request({ t: 'chat.send', room: u.room, text: 'bell\u0007' }))).toBe('bad_frame');
    expect(await codeOf(u.socket.request({ t: 'chat.send', room: u.room, text: 'c1\u009b[2J' }))).toBe('bad_frame');
    const multi = await u.socket.request({ t: 'chat.send', room: u.room, text: 'two\nlines' });
    expect(multi.message.text).toBe('two\nlines');
    await stillServesEveryone();
  });

  it('refuses NUL in a stream title or description with 400, not 500', async () => {
    const u = await server.register();
    const { id } = (await (await server.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
    const put = (body: unknown) =>
      server.api(`/api/live/streams/${id}`, {
        method: 'PUT',
        headers: { ...u.auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const body of [
      { title: 'nul\u0000title', description: '' },
      { title: 'ok', description: 'nul\u0000description' },
      { title: 'two\nlines', description: '' },
      { title: 'escape\u001b[31m', description: '' },
    ]) {
      const res = await put(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_body');
    }
    const ok = await put({ title: 'Night jam', description: 'line one\nline two\ttabbed' });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ title: 'Night jam', description: 'line one\nline two\ttabbed' });
    await stillServesEveryone();
  });
});

describe('moderation', () => {
  it('answers not_found for a user id that does not exist', async () => {
    const owner = await sockets.userWithSocket();
    const ghost = randomUUID();
    expect(await codeOf(owner.socket.request({ t: 'chat.ban', room: owner.room, userId: ghost }))).toBe('not_found');
    expect(await codeOf(owner.socket.request({ t: 'chat.timeout', room: owner.room, userId: ghost, seconds: 60 }))).toBe('not_found');
    expect(await codeOf(owner.socket.request({ t: 'chat.unban', room: owner.room, userId: ghost }))).toBe('not_found');
    await stillServesEveryone();
  });
});

describe('frames over the size limit', () => {
  it('close the socket with 1009, as documented; others are unaffected', async () => {
    const big = await sockets.connect();
    const good = await sockets.connect();
    big.sendRaw(randomBytes(70_000)); // over WS_MAX_PAYLOAD_BYTES (64 KiB)
    const t0 = Date.now();
    while (big.closeCode === null && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    expect(big.closeCode).toBe(1009);
    expect((await good.request({ t: 'ping' })).now).toBeGreaterThan(0);
    await stillServesEveryone();
  });
});

describe('sockets per address', () => {
  it('refuses sockets beyond WS_MAX_SOCKETS_PER_ADDRESS, and takes new ones once some close', async () => {
    const srv = await startTestServer({ env: { WS_MAX_SOCKETS_PER_ADDRESS: '5' } });
    try {
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => SocketClient.connect(srv.url)));
      const open = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<SocketClient>).value);
      sockets.track(...open);
      await new Promise((r) => setTimeout(r, 200));
      const stillOpen = open.filter((c) => c.closeCode === null);
      expect(stillOpen).toHaveLength(5);
      const refused = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
      for (const reason of refused) expect(reason).toMatch(/429/);
      expect(refused.length + open.filter((c) => c.closeCode === 4029).length).toBe(3);
      stillOpen[0]!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await sockets.connect(srv);
      expect((await again.request({ t: 'ping' })).now).toBeGreaterThan(0);
      for (const c of stillOpen) c.close();
      await new Promise((r) => setTimeout(r, 200));
      await stillServesEveryone(srv);
    } finally {
      await srv.close();
    }
  });
});

describe('media transports', () => {
  let media: TestServer;
  beforeAll(async () => {
    media = await startTestServer({
      media: createSfuMedia,
      env: { MEDIA_WORKERS: '1', WS_MAX_TRANSPORTS_PER_ADDRESS: '6', WS_MESSAGES_PER_SECOND: '200' },
    });
  });
  afterAll(() => media?.close());

  it('6 rtc.transport frames sent at once create 4, not 6; and sockets of one address share a cap', async () => {
    const u = await media.register();
    const { id: channelId } = (await (await media.api('/api/live/streams/me', { headers: u.auth })).json()) as { id: string };
    const caps = await (await sockets.connect(media)).request({ t: 'rtc.capabilities', streamId: channelId });
    expect(parseResult('rtc.capabilities', caps).ok).toBe(true); // what the server sends is what the web app accepts

    const s = await sockets.connect(media);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => s.request({ t: 'rtc.transport', streamId: channelId })));
    const made = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<unknown>).value);
    expect(made).toHaveLength(4);
    for (const t of made) expect(parseResult('rtc.transport', t).ok).toBe(true);
    for (const r of results.filter((x) => x.status === 'rejected'))
      expect(((r as PromiseRejectedResult).reason as SocketError).code).toBe('rate_limited');

    // three more sockets from the same address, four frames each at once: only 2 more fit under the cap of 6
    const others = await Promise.all(Array.from({ length: 3 }, () => sockets.connect(media)));
    const more = await Promise.allSettled(
      others.flatMap((o) => Array.from({ length: 4 }, () => o.request({ t: 'rtc.transport', streamId: channelId }))),
    );
    expect(more.filter((r) => r.status === 'fulfilled')).toHaveLength(2);

    // closing a socket gives its transports back
    s.close();
    await new Promise((r) => setTimeout(r, 300));
    const after = await sockets.connect(media);
    const t = await after.request({ t: 'rtc.transport', streamId: channelId });
    await after.request({ t: 'rtc.close', transportId: t.id });
    await stillServesEveryone(media);
  });
});
