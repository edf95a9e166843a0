import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { errorResponse, HttpError } from './errors.ts';
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

export interface Router {
  handle(req: Request, info: { remoteAddress: string }): Promise<Response>;
  /** Registered routes, for the OpenAPI consistency test. */
  readonly routes: readonly Route[];
}

function splitPath(path: string): string[] {
  return path.split('/').filter(Boolean);
}

function match(segments: string[], pathSegments: string[]): Record<string, string> | null {
  if (segments.length !== pathSegments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const value = pathSegments[i]!;
    if (seg.startsWith(':')) {
      try {
        params[seg.slice(1)] = decodeURIComponent(value);
      } catch {
        return null;
      }
    } else if (seg !== value) return null;
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

  async function handle(req: Request, info: { remoteAddress: string }): Promise<Response> {
    const requestId = randomBytes(6).toString('hex');
    const started = performance.now();
    const url = new URL(req.url);
    const pathSegments = splitPath(url.pathname);
    let response: Response;
    try {
      response = await dispatch(req, pathSegments, { remoteAddress: info.remoteAddress, requestId });
    } catch (err) {
      if (err instanceof HttpError) {
        response = errorResponse(err.status, err.code, err.message, err.headers);
      } else {
        logger.error({ err, requestId, method: req.method, path: url.pathname }, 'request failed');
        response = errorResponse(500, 'internal', 'Internal server error');
      }
    }
    response.headers.set('x-request-id', requestId);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const level = response.status === 500 ? 'error' : response.status >= 500 ? 'warn' : 'debug';
    logger[level]({ requestId, method: req.method, path: url.pathname, status: response.status, ms, ip: info.remoteAddress }, 'http');
    return response;
  }

  async function dispatch(req: Request, pathSegments: string[], base: { remoteAddress: string; requestId: string }): Promise<Response> {
    const allowed = new Set<HttpMethod>();
    for (const route of compiled) {
      const params = match(route.segments, pathSegments);
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
