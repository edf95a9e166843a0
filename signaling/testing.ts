/**
 * Test helpers: a real whipcast server on 127.0.0.1:<random port> over a fresh
 * database, and an API client that checks every response against the OpenAPI
 * document (status documented, body matching its schema).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import pino from 'pino';
import { openTestDatabase, type TestDatabaseKind } from '@whipcast/db/testing';
import { loadConfig } from './config.ts';
import { buildOpenApiDocument } from './http/openapi.ts';
import type { Route } from './http/types.ts';
import { startWhipcast, type StartOptions, type Whipcast } from './server.ts';
import { stopProgramHelper, type Sfu } from '@whipcast/sfu';
import type { ApiAuthResult, ApiRecording, ApiRecordingList, ApiStream } from './api.ts';
import { createSfuMedia } from './sfu-adapter.ts';

export interface TestServer {
  app: Whipcast;
  url: string;
  /** fetch() against the server that also asserts the response matches the OpenAPI document. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Registers a fresh user; returns its session and an Authorization header. */
  register(username?: string): Promise<ApiAuthResult & { auth: { authorization: string } }>;
  /** Registers a fresh user and returns its channel and stream key as well (all through the checked API). */
  streamer(username?: string): Promise<TestStreamer>;
  /** A channel's past broadcasts, newest first (`GET /api/live/streams/:id/recordings`, expected 200). */
  recordings(channelId: string): Promise<ApiRecording[]>;
  /** Fetches `path` (checked like `api`) and writes the body to the file `to`. */
  saveFile(path: string, to: string, init?: RequestInit): Promise<{ res: Response; data: Buffer }>;
  close(): Promise<void>;
}

/** A fresh account, its channel and its stream key. */
export interface TestStreamer {
  channelId: string;
  streamKey: string;
  /** The channel as `GET /api/live/streams/me` returned it. */
  channel: ApiStream;
  auth: { authorization: string };
}

export interface TestServerOptions {
  /** Which database (default: embedded). */
  db?: TestDatabaseKind;
  /** Environment variables on top of the test defaults (loopback, port 0, in-memory database). */
  env?: Record<string, string>;
  /** Builds the media layer (default: none; `startSfuTestServer` uses the real SFU). */
  media?: StartOptions['media'];
  /** Where the server logs (default: pino at LOG_LEVEL, silent unless set). */
  logger?: StartOptions['logger'];
}

/** A test server with the real SFU, and the `Sfu` itself for tests that look inside the media layer. */
export interface SfuTestServer extends TestServer {
  sfu: Sfu;
}

export async function startSfuTestServer(opts: Omit<TestServerOptions, 'media'> = {}): Promise<SfuTestServer> {
  let sfu: Sfu | undefined;
  const server = await startTestServer({
    ...opts,
    media: async (deps) => {
      const media = await createSfuMedia(deps);
      sfu = media.sfu;
      return media;
    },
  });
  if (!sfu) throw new Error('the media layer was not built');
  return { ...server, sfu };
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  // recordings (on by default) go to a throwaway directory unless the test names one
  const recordingsDir = opts.env?.RECORDINGS_DIR ? null : mkdtempSync(join(tmpdir(), 'whipcast-test-recordings-'));
  const config = loadConfig({
    ...(recordingsDir ? { RECORDINGS_DIR: recordingsDir } : {}),
    HOST: '127.0.0.1',
    PORT: '0',
    EMBEDDED_DB_PATH: ':memory:',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    WEB_DIR: '/nonexistent',
    RTC_LISTEN_IP: '127.0.0.1',
    RTC_ANNOUNCED_ADDRESS: '127.0.0.1',
    RTC_PORT: '0',
    // every test user signs up from 127.0.0.1; the hardening tests set their own limits
    REGISTER_RATE_PER_HOUR: '1000000',
    ...opts.env,
  });
  const database = await openTestDatabase(opts.db ?? 'embedded');
  const app = await startWhipcast(config, {
    database,
    logger: opts.logger ?? pino({ level: config.logLevel }),
    ...(opts.media ? { media: opts.media } : {}),
  });
  const validate = openApiValidator(app.router.routes);

  async function api(path: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(app.url + path, init);
    const body = await res.clone().text();
    validate(init.method ?? 'GET', path, res, body);
    return res;
  }

  async function register(username = `user_${randomBytes(4).toString('hex')}`) {
    const res = await api('/api/auth/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: 'correct horse battery' }),
    });
    if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
    const session = (await res.json()) as ApiAuthResult;
    return { ...session, auth: { authorization: `Bearer ${session.token}` } };
  }

  return {
    app,
    url: app.url,
    api,
    register,
    async streamer(username) {
      const { auth } = await register(username);
      const channel = (await (await api('/api/live/streams/me', { headers: auth })).json()) as ApiStream;
      const { streamKey } = (await (await api('/api/live/streams/me/key', { headers: auth })).json()) as { streamKey: string };
      return { channelId: channel.id, streamKey, channel, auth };
    },
    async recordings(channelId) {
      const res = await api(`/api/live/streams/${channelId}/recordings`);
      if (res.status !== 200) throw new Error(`recordings of ${channelId}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as ApiRecordingList).recordings;
    },
    async saveFile(path, to, init) {
      const res = await api(path, init);
      const data = Buffer.from(await res.arrayBuffer());
      writeFileSync(to, data);
      return { res, data };
    },
    async close() {
      await app.close();
      stopProgramHelper(); // the process's thumbnail helper would outlive the test file's servers
      if (recordingsDir) rmSync(recordingsDir, { recursive: true, force: true });
    },
  };
}

/** Returns a checker that throws when a response is not what the OpenAPI document promises. */
export function openApiValidator(routes: readonly Route[]) {
  const doc = buildOpenApiDocument(routes, 'test') as {
    paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
    components: { schemas: Record<string, unknown> };
  };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'whipcast', components: doc.components });
  const compiled = new Map<string, ReturnType<typeof ajv.compile>>();

  const findOperation = (method: string, pathname: string) => {
    for (const [pattern, ops] of Object.entries(doc.paths)) {
      const re = new RegExp(`^${pattern.replace(/\{\w+\}/g, '[^/]+')}$`);
      const op = ops[method.toLowerCase()];
      if (op && re.test(pathname)) return { pattern, op };
    }
    return null;
  };

  return (method: string, path: string, res: Response, body: string): void => {
    const pathname = new URL(path, 'http://x').pathname;
    const found = findOperation(method, pathname);
    if (!found) {
      if (res.status === 404 || res.status === 405) return; // unknown resources are not operations
      throw new Error(`${method} ${pathname} answered ${res.status} but is not in the OpenAPI document`);
    }
    const response = found.op.responses[String(res.status)];
    if (!response) throw new Error(`${method} ${found.pattern}: status ${res.status} is not documented (body: ${body.slice(0, 200)})`);
    const content = response.content;
    if (!content) return;
    const [type, media] = Object.entries(content)[0]!;
    if (!res.headers.get('content-type')?.startsWith(type)) {
      throw new Error(`${method} ${found.pattern} ${res.status}: content-type ${res.headers.get('content-type')} is not ${type}`);
    }
    if (!media.schema) return;
    const key = JSON.stringify(media.schema);
    let check = compiled.get(key);
    if (!check) {
      const ref = (media.schema as { $ref: string }).$ref.replace('#/', 'whipcast#/');
      check = ajv.compile({ $ref: ref });
      compiled.set(key, check);
    }
    if (!check(JSON.parse(body))) {
      throw new Error(
        `${method} ${found.pattern} ${res.status}: body does not match schema: ${ajv.errorsText(check.errors)}\n${body.slice(0, 500)}`,
      );
    }
  };
}
