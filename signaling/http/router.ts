import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { asHttpError, errorResponse, HttpError } from './errors.ts';
import { BASE_SECURITY_HEADERS } from './security-headers.ts';
import { parseTarget, TargetError, validHost, type RequestTarget } from './target.ts';
import type { Handler, HttpMethod, Route } from './types.ts';

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

interface CompiledRoute extends Route {
  segments: string[];
}

export interface RouterOptions {
  routes: Route[];
  /** Called for GET/HEAD requests no route matched (static files, SPA fallback). */
  fallback?: Handler;
  logger: Logger;
}

export interface RequestInfo {
  remoteAddress: string;
  /** The path exactly as the client sent it (percent-encoded, no query). Default: the path of `req.url`. */
  rawPath?: string;
}

export interface Router {
  handle(req: Request, info: RequestInfo): Promise<Response>;
  /** Registered routes, for the OpenAPI consistency test. */
  readonly routes: readonly Route[];
}

function splitPath(path: string): string[] {
  return path.split('/').filter(Boolean);
}

/** Literal segments match the raw text exactly (no decoding); `:params` take the decoded value, never empty. */
function match(segments: string[], target: RequestTarget): Record<string, string> | null {
  if (segments.length !== target.raw.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.startsWith(':')) {
      if (!target.decoded[i]) return null;
      params[seg.slice(1)] = target.decoded[i]!;
    } else if (seg !== target.raw[i]) return null;
  }
  return params;
}

async function readLimited(req: Request, limit: number): Promise<Request | Response> {
  if (!req.body) return req;
  const buf = new Uint8Array(await req.arrayBuffer());
  if (buf.byteLength > limit) {
    return errorResponse(413, 'payload_too_large', `Request body exceeds ${limit} bytes`);
  }
  return new Request(req.url, { method: req.method, headers: req.headers, body: buf });
}

export function createRouter(options: RouterOptions): Router {
  const compiled: CompiledRoute[] = options.routes.map((r) => ({ ...r, segments: splitPath(r.path) }));
  const { logger } = options;

  async function handle(req: Request, info: RequestInfo): Promise<Response> {
    const requestId = randomBytes(6).toString('hex');
    const started = performance.now();
    const rawPath = info.rawPath ?? new URL(req.url).pathname;
    let response: Response;
    try {
      const host = req.headers.get('host');
      if (host !== null && !validHost(host)) throw new HttpError(400, 'bad_request', 'The Host header is not a host name');
      let target: RequestTarget;
      try {
        target = parseTarget(rawPath);
      } catch (e) {
        if (e instanceof TargetError) throw new HttpError(400, 'bad_request', e.message);
        throw e;
      }
      response = await dispatch(req, target, { remoteAddress: info.remoteAddress, requestId, path: target.path });
    } catch (err) {
      const e = asHttpError(err);
      if (e) {
        response = errorResponse(e.status, e.code, e.message, e.headers);
      } else {
        logger.error({ err, requestId, method: req.method, path: rawPath }, 'request failed');
        response = errorResponse(500, 'internal', 'Internal server error');
      }
    }
    response.headers.set('x-request-id', requestId);
    for (const [k, v] of Object.entries(BASE_SECURITY_HEADERS)) response.headers.set(k, v);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const level = response.status === 500 ? 'error' : response.status >= 500 ? 'warn' : 'debug';
    logger[level]({ requestId, method: req.method, path: rawPath, status: response.status, ms, ip: info.remoteAddress }, 'http');
    return response;
  }

  async function dispatch(
    req: Request,
    target: RequestTarget,
    base: { remoteAddress: string; requestId: string; path: string },
  ): Promise<Response> {
    const allowed = new Set<HttpMethod>();
    for (const route of compiled) {
      const params = match(route.segments, target);
      if (!params) continue;
      const method = req.method === 'HEAD' && route.method === 'GET' ? 'GET' : req.method;
      if (route.method !== method) {
        allowed.add(route.method);
        continue;
      }
      const limited = await readLimited(req, route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
      if (limited instanceof Response) return limited;
      return route.handler(limited, { ...base, params });
    }
    if (allowed.size > 0) {
      if (allowed.has('GET')) allowed.add('HEAD');
      return errorResponse(405, 'method_not_allowed', `${req.method} is not allowed here`, { allow: [...allowed].join(', ') });
    }
    if (options.fallback && (req.method === 'GET' || req.method === 'HEAD')) {
      return options.fallback(req, { ...base, params: {} });
    }
    return errorResponse(404, 'not_found', 'No such resource');
  }

  return { handle, routes: options.routes };
}
