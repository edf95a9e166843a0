/**
 * The HTTP layer under attack (issue #15): routing by Host or by normalised
 * paths, bad percent-encoding, password guessing, sign-up floods, hashing
 * floods, security headers, the metrics token. Each attack is made for real
 * against a real server over loopback, and after each a normal user is still
 * served promptly.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './testing.ts';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request exactly as given: the path is not normalised and the Host header is ours to choose (or leave out). */
function raw(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const headers = { 'content-length': String(Buffer.byteLength(opts.body ?? '')), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: opts.method ?? 'GET', headers, setHost: !opts.headers?.host }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${opts.method ?? 'GET'} ${path}`)));
    req.end(opts.body);
  });
}

/** Bytes written as they are; resolves with what came back before the server closed or went quiet. */
function rawText(base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let got = '';
    const sock = connect(Number(port), hostname, () => sock.write(text));
    const done = () => {
      sock.destroy();
      resolve(got);
    };
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      got += c;
      if (/\r\n\r\n/.test(got)) setTimeout(done, 50);
    });
    sock.on('end', done);
    sock.on('error', reject);
    sock.setTimeout(5000, done);
  });
}

const json = (body: unknown, address: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
  body: JSON.stringify(body),
});

let addressSeq = 0;
/** A fresh client address (the servers trust X-Forwarded-For, as behind a proxy). */
const freshAddress = () => `198.51.100.${++addressSeq}`;

/** Health within a second, and a new user can sign up, sign in and get a stream key. */
async function servesNormalUser(s: TestServer): Promise<void> {
  const t0 = performance.now();
  const health = await fetch(`${s.url}/healthz`);
  expect(health.status).toBe(200);
  expect(performance.now() - t0).toBeLessThan(1000);
  const address = freshAddress();
  const username = `normal_${addressSeq}_${Math.random().toString(36).slice(2, 8)}`;
  const reg = await fetch(`${s.url}/api/auth/register`, json({ username, password: 'correct horse battery' }, address));
  expect(reg.status).toBe(201);
  const login = await fetch(`${s.url}/api/auth/login`, json({ username, password: 'correct horse battery' }, address));
  expect(login.status).toBe(200);
  const { token } = (await login.json()) as { token: string };
  const key = await fetch(`${s.url}/api/live/streams/me/key`, { headers: { authorization: `Bearer ${token}` } });
  expect(key.status).toBe(200);
}

const METRICS_MARK = 'whipcast_http_requests_total';
const BOOT_SCRIPT = '\n      window.booted = true;\n    ';

let site: string;
let s: TestServer;

beforeAll(async () => {
  // a stand-in for the built web app: an SPA shell with an inline bootstrap script, and one asset
  site = await mkdtemp(join(tmpdir(), 'whipcast-site-'));
  await mkdir(join(site, '_app/immutable'), { recursive: true });
  await writeFile(
    join(site, '200.html'),
    `<!doctype html><html><head></head><body><div style="display: contents"><script>${BOOT_SCRIPT}</script></div></body></html>`,
  );
  await writeFile(join(site, '_app/immutable/app.js'), 'export {};\n');
  s = await startTestServer({ env: { TRUST_PROXY: 'true', WEB_DIR: site, REGISTER_RATE_PER_HOUR: '5' } });
});
afterAll(async () => {
  await s?.close();
  if (site) await rm(site, { recursive: true, force: true });
});

describe('routing', () => {
  it('routes on the request path alone: a Host header names, it does not route', async () => {
    for (const host of ['h/metrics?', 'h/api/live/streams#', 'a b', 'h:99999999', 'h\\metrics']) {
      const res = await raw(s.url, '/healthz', { headers: { host } });
      expect(res.status, host).toBe(400);
      expect(res.body).not.toContain(METRICS_MARK);
      expect(res.body).not.toContain('"streams"');
    }
    const twoHosts = await rawText(s.url, 'GET /healthz HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n');
    expect(twoHosts).toMatch(/^HTTP\/1\.1 400 /);
    for (const host of ['live.example.com', 'live.example.com:8443', '127.0.0.1:8080', '[::1]:8080']) {
      const res = await raw(s.url, '/healthz', { headers: { host } });
      expect(res.status, host).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    }
    await servesNormalUser(s);
  });

  it('does not normalise the path: dot segments, encoded names and extra slashes never reach /metrics or /internal', async () => {
    const paths = [
      '/x/../metrics',
      '/healthz/%2e%2e/metrics',
      '/%2E%2E/metrics',
      '/./metrics',
      '/%6detrics',
      '/METRICS',
      '//metrics',
      '/metrics/',
      '/x\\..\\metrics',
      '/metrics#',
      '/metrics%23',
      '/internal/%2e%2e/metrics',
    ];
    for (const path of paths) {
      const res = await raw(s.url, path);
      expect(res.body, path).not.toContain(METRICS_MARK);
      expect([200, 400, 404], path).toContain(res.status);
    }
    // exact paths only: the guarded paths themselves still work
    expect((await raw(s.url, '/metrics')).body).toContain(METRICS_MARK);
    await servesNormalUser(s);
  });

  it('never answers /internal/* with the web app on a single node', async () => {
    for (const [method, path] of [
      ['GET', '/internal/relays'],
      ['HEAD', '/internal/relays'],
      ['GET', '/internal'],
      ['POST', '/internal/relays'],
      ['DELETE', '/internal/relays/abc'],
      ['GET', '/internal/anything/else'],
    ] as const) {
      const res = await raw(s.url, path, { method });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).not.toContain('<html');
    }
    // while page routes do get the app
    expect((await raw(s.url, '/live/some-channel')).body).toContain('<html');
  });

  it('answers bad percent-encoding with 400, not 500', async () => {
    const paths = [
      '/%',
      '/%zz',
      '/%E0%A4%A',
      '/live/%ff',
      '/api/live/streams/%ZZ',
      '/whep/%',
      '/_app/%c0',
      '/%00',
      '/a%2fb',
      '/api/live/streams/%2e%2e',
    ];
    for (const path of paths) {
      const res = await raw(s.url, path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body), path).toEqual({ error: { code: 'bad_request', message: expect.any(String) } });
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) expect((await raw(s.url, '/whep/%', { method })).status).toBe(400);
    expect(await (await fetch(`${s.url}/metrics`)).text()).not.toMatch(/status="500"/);
    await servesNormalUser(s);
  });

  it('keeps the connection usable after a HEAD (keep-alive)', async () => {
    const twice = await rawText(s.url, 'HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(twice.match(/^HTTP\/1\.1 200 /gm)?.length).toBe(2);
    expect(twice).toContain('{"status":"ok"}');
  });

  it('refuses methods it does not implement with 501', async () => {
    // (uWebSockets itself closes the connection on methods it does not know at all, e.g. PROPFIND)
    for (const method of ['TRACE', 'CONNECT']) {
      expect(await rawText(s.url, `${method} /healthz HTTP/1.1\r\nHost: a\r\n\r\n`), method).toMatch(/^HTTP\/1\.1 501 /);
    }
    await servesNormalUser(s);
  });
});

describe('security headers', () => {
  it('HTML pages carry a CSP with the hash of their inline script and may not be framed, except /embed/*', async () => {
    const page = await raw(s.url, '/live/abc');
    expect(page.status).toBe(200);
    const csp = String(page.headers['content-security-policy']);
    const hash = createHash('sha256').update(BOOT_SCRIPT).digest('base64');
    expect(csp).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(csp).not.toMatch(/unsafe-eval|script-src[^;]*unsafe-inline/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('same-origin');

    const embed = await raw(s.url, '/embed/abc');
    expect(embed.status).toBe(200);
    expect(String(embed.headers['content-security-policy'])).toContain(`'sha256-${hash}'`);
    expect(String(embed.headers['content-security-policy'])).not.toContain('frame-ancestors');
    expect(embed.headers['x-frame-options']).toBeUndefined();

    const asset = await raw(s.url, '/_app/immutable/app.js');
    expect(asset.status).toBe(200);
    expect(asset.headers['x-content-type-options']).toBe('nosniff');
    expect(asset.headers['content-security-policy']).toBeUndefined();
  });

  it('sends no server banner', async () => {
    for (const path of ['/healthz', '/', '/nope/%', '/api/nothing']) {
      const res = await raw(s.url, path);
      expect(Object.keys(res.headers).map((h) => h.toLowerCase())).not.toContain('uwebsockets');
    }
  });

  it('auth responses are never cached', async () => {
    const address = freshAddress();
    const username = `nocache_${addressSeq}`;
    const reg = await fetch(`${s.url}/api/auth/register`, json({ username, password: 'correct horse battery' }, address));
    const ok = await fetch(`${s.url}/api/auth/login`, json({ username, password: 'correct horse battery' }, address));
    const wrong = await fetch(`${s.url}/api/auth/login`, json({ username, password: 'wrong horse battery' }, address));
    const out = await fetch(`${s.url}/api/auth/logout`, { method: 'POST' });
    expect([reg.status, ok.status, wrong.status, out.status]).toEqual([201, 200, 401, 204]);
    for (const res of [reg, ok, wrong, out]) expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('METRICS_TOKEN', () => {
  it('guards /metrics with a bearer token when set', async () => {
    const token = 'metrics-token-for-the-test-0123456789';
    const guarded = await startTestServer({ env: { METRICS_TOKEN: token } });
    try {
      expect((await guarded.api('/metrics')).status).toBe(401);
      const wrong = await guarded.api('/metrics', { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).not.toContain(METRICS_MARK);
      const right = await guarded.api('/metrics', { headers: { authorization: `Bearer ${token}` } });
      expect(right.status).toBe(200);
      expect(await right.text()).toContain(METRICS_MARK);
      // nor can a Host header or path trick get around it
      expect((await raw(guarded.url, '/healthz', { headers: { host: 'h/metrics?' } })).body).not.toContain(METRICS_MARK);
    } finally {
      await guarded.close();
    }
  });
});

describe('password guessing and sign-up floods', () => {
  const password = 'correct horse battery';

  it('a wrong but short password is a wrong password (401), not a bad request', async () => {
    const address = freshAddress();
    const username = `shorty_${addressSeq}`;
    expect((await fetch(`${s.url}/api/auth/register`, json({ username, password }, address))).status).toBe(201);
    for (const body of [
      { username, password: 'x' },
      { username, password: '' },
      { username: 'ab', password: 'whatever1' },
      { username: 'no such user!', password: 'x' },
    ]) {
      const res = await s.api('/api/auth/login', json(body, address));
      expect(res.status, JSON.stringify(body)).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'invalid_credentials', message: 'Wrong username or password' } });
    }
  });

  it('rate-limits guessing from one address (429 + Retry-After) while a real user signs in fast', async () => {
    const victim = `victim_${++addressSeq}`;
    const real = `real_${addressSeq}`;
    const realAddress = freshAddress();
    expect((await fetch(`${s.url}/api/auth/register`, json({ username: victim, password }, freshAddress()))).status).toBe(201);
    expect((await fetch(`${s.url}/api/auth/register`, json({ username: real, password }, realAddress))).status).toBe(201);

    const attacker = '203.0.113.7';
    const guesses = Array.from({ length: 45 }, (_, i) =>
      fetch(`${s.url}/api/auth/login`, json({ username: victim, password: `guess-number-${i}` }, attacker)),
    );
    // the real user signs in while the guesses are being answered
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    const mine = await fetch(`${s.url}/api/auth/login`, json({ username: real, password }, realAddress));
    const realMs = performance.now() - t0;
    const answers = await Promise.all(guesses);
    expect(mine.status).toBe(200);
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((x) => x === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((x) => x === 429).length).toBeGreaterThanOrEqual(35);
    expect(statuses.every((x) => x === 401 || x === 429 || x === 503)).toBe(true);
    const limited = answers.find((r) => r.status === 429)!;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    console.log(`real user's sign-in during 45 guesses from one address: ${Math.round(realMs)} ms`);
    expect(realMs).toBeLessThan(1000);
    await servesNormalUser(s);
  });

  it('limits failed sign-ins per account across addresses, and other accounts are unaffected', async () => {
    const victim = `target_${++addressSeq}`;
    expect((await fetch(`${s.url}/api/auth/register`, json({ username: victim, password }, freshAddress()))).status).toBe(201);
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) {
      const res = await fetch(`${s.url}/api/auth/login`, json({ username: victim, password: `guess-${i}-xxxx` }, `203.0.113.${100 + i}`));
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(60);
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(4).fill(429));
    await servesNormalUser(s);
  });

  it('keeps hashing from being a CPU lever: a flood from many addresses is queued or refused fast (503), never piles up', async () => {
    const flood = Array.from({ length: 60 }, (_, i) => {
      const t0 = performance.now();
      return fetch(`${s.url}/api/auth/login`, json({ username: `ghost_${i}`, password: 'not the password' }, `192.0.2.${i + 1}`)).then(
        (res) => ({ status: res.status, ms: performance.now() - t0, retry: res.headers.get('retry-after') }),
      );
    });
    const health0 = performance.now();
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    const healthMs = performance.now() - health0;
    const results = await Promise.all(flood);
    const busy = results.filter((r) => r.status === 503);
    // 1 hashing + 16 waiting at most: the rest are refused without hashing
    expect(results.filter((r) => r.status === 401).length).toBeLessThanOrEqual(17);
    expect(busy.length).toBeGreaterThanOrEqual(60 - 17);
    expect(busy.every((r) => r.retry === '1')).toBe(true);
    const slowestRefusal = Math.max(...busy.map((r) => r.ms));
    console.log(`hash flood: ${busy.length} refused (slowest refusal ${Math.round(slowestRefusal)} ms), health ${Math.round(healthMs)} ms`);
    expect(healthMs).toBeLessThan(1000);
    await servesNormalUser(s);
  });

  it('rate-limits sign-ups per address (429 + Retry-After); other addresses can still sign up', async () => {
    const address = freshAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${s.url}/api/auth/register`, json({ username: `flood_${addressSeq}_${i}`, password }, address));
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(60);
    }
    expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
    await servesNormalUser(s);
  });

  it('takes the client address from the proxy’s own X-Forwarded-For entry, not the client’s', async () => {
    // a client writing its own X-Forwarded-For cannot pick a fresh bucket per request: the proxy's entry comes last
    const statuses: number[] = [];
    const proxySaw = freshAddress();
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${s.url}/api/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': `10.9.8.${i}, ${proxySaw}` },
        body: JSON.stringify({ username: `spoof_${addressSeq}_${i}`, password }),
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((x) => x === 429).length).toBe(2);
  });
});
