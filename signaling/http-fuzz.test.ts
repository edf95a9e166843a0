/**
 * Fuzzes the HTTP router (the HTTP counterpart of the socket fuzzer in
 * socket.test.ts): random and mutated paths, percent-encodings, Host headers,
 * methods, content types and bodies against a real server with media, over
 * loopback, bounded in count and time. Every answer must be a status the API
 * documents for that route (or one of the router's own: 400 bad target, 404,
 * 405, 413, 501), never a 500, and a normal user is served throughout.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from './http/target.ts';
import type { Route } from './http/types.ts';
import { createSfuMedia } from './sfu-adapter.ts';
import { startTestServer, type TestServer } from './testing.ts';

const REQUESTS = 1500;
const TIME_BUDGET_MS = 60_000;
const PARALLEL = 6;
/** What the router and adapter answer for any path: bad target or Host, no such resource, wrong method, body too large, unknown method. */
const ROUTER_STATUSES = [400, 404, 405, 413, 501];
/** Page routes (the SPA) and static files. */
const STATIC_STATUSES = [200, 304];

let rng = 0x5eed;
const rand = () => (rng = (rng * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const UUID = 'a3bb189e-8bf9-3888-9912-ace4e6543002';
const SEGMENTS = [
  'api',
  'live',
  'streams',
  'me',
  'key',
  'auth',
  'login',
  'register',
  'logout',
  'whip',
  'whep',
  'sessions',
  'internal',
  'relays',
  'metrics',
  'healthz',
  'readyz',
  'openapi.json',
  '_app',
  'immutable',
  'app.js',
  'embed',
  'ws',
  UUID,
  'x',
  '',
];
const NASTY = [
  '%',
  '%z',
  '%zz',
  '%E0%A4%A',
  '%ff',
  '%c0',
  '%c0%af',
  '%00',
  '%2e',
  '%2e%2e',
  '.',
  '..',
  '%2f',
  '%5c',
  '\\',
  '#',
  '?',
  ';',
  '%25',
  '%u0041',
  'é',
  '%F0%9F%8E%A5',
  '%EF%BF%BF',
  'a'.repeat(300),
  '~',
  '@',
  ':',
  '*',
];
const HOSTS = [
  undefined,
  'localhost',
  'live.example.com:443',
  '[::1]',
  'h/metrics?',
  'h/api/live/streams#',
  'a b',
  'x@y',
  '',
  'h:70000',
  '..',
  'ä.example',
];
const METHODS = ['GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];
const TYPES = [
  'application/json',
  'application/sdp',
  'application/trickle-ice-sdpfrag',
  'text/plain',
  'multipart/form-data; boundary=x',
  '',
];

/** Half the paths are real route patterns with random parameters (a few mutated); half are random segments. */
function randomPath(templates: readonly string[]): string {
  const segs: string[] = [];
  if (rand() < 0.5) {
    for (const seg of pick(templates).split('/').filter(Boolean)) {
      segs.push(seg.startsWith(':') ? pick([UUID, UUID, 'x', randomBytes(12).toString('base64url'), pick(NASTY)]) : seg);
    }
    if (rand() < 0.2) segs[Math.floor(rand() * segs.length)] = pick(NASTY);
  } else {
    const n = 1 + Math.floor(rand() * 5);
    for (let i = 0; i < n; i++) {
      let seg = rand() < 0.75 ? pick(SEGMENTS) : pick(NASTY);
      if (rand() < 0.2) seg += pick(NASTY);
      if (rand() < 0.1) seg = encodeURIComponent(seg);
      segs.push(seg);
    }
  }
  let path = `/${segs.join('/')}`;
  if (rand() < 0.2) path += `?${pick(['a=1', 'next=/metrics', '%zz', 'x=%ff&y'])}`;
  return path;
}

function randomBody(type: string): string {
  const r = rand();
  if (r < 0.3) return '';
  if (type === 'application/json' && r < 0.7) {
    return JSON.stringify(
      pick([
        {
          username: pick(['ab', 'fuzzer', 'x'.repeat(40), '', 'a\u0000b']),
          password: pick(['', 'x', 'correct horse battery', 'p'.repeat(300)]),
        },
        { title: 'x\u0000', description: 'y' },
        { streamId: UUID, node: 'n', endpoint: { ip: '127.0.0.1', port: 9 } },
        [],
        null,
        'str',
      ]),
    );
  }
  if (type === 'application/sdp' && r < 0.7)
    return `v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n${randomBytes(20).toString('hex')}\r\n`;
  return randomBytes(1 + Math.floor(rand() * 2000)).toString('latin1');
}

interface Outcome {
  status: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });

function send(
  base: string,
  method: string,
  path: string,
  host: string | undefined,
  type: string,
  body: string,
  auth: boolean,
): Promise<Outcome | null> {
  const { hostname, port } = new URL(base);
  const headers: Record<string, string> = { 'content-length': String(Buffer.byteLength(body, 'latin1')) };
  if (host !== undefined) headers.host = host;
  if (type) headers['content-type'] = type;
  if (auth) headers.authorization = `Bearer ${pick(['wcs_x', 'wck_x', 'garbage', randomBytes(8).toString('hex')])}`;
  return new Promise((resolve, reject) => {
    let req;
    try {
      req = request({ agent, host: hostname, port, method, path, headers, setHost: host === undefined }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode! }));
      });
    } catch {
      return resolve(null); // the client library refuses to send it (e.g. a character Node will not put in a request line)
    }
    req.on('error', (err: NodeJS.ErrnoException) =>
      // uWebSockets closes the connection on a method it does not know; anything else is a failure
      method === 'TRACE' && err.code === 'ECONNRESET' ? resolve(null) : reject(err),
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.end(body, 'latin1');
  });
}

/** The statuses the OpenAPI document allows for this request, or null when no route takes it. */
function documentedStatuses(routes: readonly Route[], method: string, path: string): number[] | null {
  let target;
  try {
    target = parseTarget(path.split('?')[0]!);
  } catch {
    return null;
  }
  for (const route of routes) {
    if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
    const segs = route.path.split('/').filter(Boolean);
    if (segs.length !== target.raw.length) continue;
    if (segs.every((s, i) => (s.startsWith(':') ? target.decoded[i] !== '' : s === target.raw[i]))) {
      if (route.doc) return Object.keys(route.doc.responses).map(Number);
      return route.method === 'OPTIONS' ? [204] : null; // CORS preflights are not API operations
    }
  }
  return null;
}

let site: string;
let s: TestServer;

beforeAll(async () => {
  site = await mkdtemp(join(tmpdir(), 'whipcast-fuzz-site-'));
  await mkdir(join(site, '_app/immutable'), { recursive: true });
  await writeFile(join(site, '200.html'), '<!doctype html><html><body><script>window.x = 1;</script></body></html>');
  await writeFile(join(site, '_app/immutable/app.js'), 'export {};\n');
  s = await startTestServer({ media: createSfuMedia, env: { MEDIA_WORKERS: '1', WEB_DIR: site } });
}, 60_000);
afterAll(async () => {
  agent.destroy();
  await s?.close();
  if (site) await rm(site, { recursive: true, force: true });
});

describe('HTTP router fuzzer', () => {
  it(
    'answers thousands of random requests with documented statuses, never 500, and keeps serving a normal user',
    { timeout: 120_000 },
    async () => {
      const routes = s.app.router.routes;
      const templates = [...new Set(routes.map((r) => r.path))];
      const seen = new Map<number, number>();
      const bad: string[] = [];
      const deadline = Date.now() + TIME_BUDGET_MS;
      let sent = 0;
      let next = 0;
      const worker = async () => {
        while (next < REQUESTS && Date.now() < deadline) {
          next++;
          const method = pick(METHODS);
          const path = randomPath(templates);
          const host = rand() < 0.3 ? pick(HOSTS) : undefined;
          const type = pick(TYPES);
          const out = await send(
            s.url,
            method,
            path,
            host,
            type,
            method === 'GET' || method === 'HEAD' ? '' : randomBody(type),
            rand() < 0.3,
          );
          if (!out) continue;
          sent++;
          seen.set(out.status, (seen.get(out.status) ?? 0) + 1);
          // (uWebSockets drops header bytes that are not ASCII, so 'ä.example' arrives as the valid name '.example')
          const hostOk =
            host === undefined || /[^\x20-\x7e]/.test(host) || /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(host);
          const documented = hostOk ? documentedStatuses(routes, method, path) : null;
          const allowed = documented ? [...documented, ...ROUTER_STATUSES] : [...ROUTER_STATUSES, ...STATIC_STATUSES];
          if (!allowed.includes(out.status)) bad.push(`${method} ${path} (Host ${host}) → ${out.status}`);
        }
      };
      const healthLatencies: number[] = [];
      const probe = (async () => {
        while (next < REQUESTS && Date.now() < deadline) {
          const t0 = performance.now();
          expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
          healthLatencies.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      await Promise.all([...Array.from({ length: PARALLEL }, worker), probe]);

      console.log(
        `http fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries(seen))}, worst health ${Math.round(Math.max(...healthLatencies))} ms`,
      );
      expect(sent).toBeGreaterThan(500);
      expect(bad).toEqual([]);
      expect(seen.has(500)).toBe(false);
      expect(Math.max(...healthLatencies)).toBeLessThan(1000);
      // a normal user signs up, gets a channel and a key
      const user = await s.register();
      expect((await s.api('/api/live/streams/me', { headers: user.auth })).status).toBe(200);
      expect((await s.api('/api/live/streams/me/key', { headers: user.auth })).status).toBe(200);
    },
  );
});
