/**
 * The HTTP contract every route is written against. Routes are plain functions
 * from a WHATWG `Request` to a `Response`, so they can be unit-tested without a
 * server; `uws.ts` adapts uWebSockets.js to this contract.
 */

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

export interface RouteContext {
  /** Path parameters, e.g. `{ id: '…' }` for `/api/live/streams/:id`. */
  params: Record<string, string>;
  /** Client IP address as seen by the server (or from X-Forwarded-For when trusted). */
  remoteAddress: string;
  /** Short id for log correlation, also sent back as `X-Request-Id`. */
  requestId: string;
  /** The request path, percent-decoded segment by segment (dot segments and encoded slashes are refused before routing). */
  path: string;
}

export type Handler = (req: Request, ctx: RouteContext) => Response | Promise<Response>;

/** OpenAPI description of a route; schemas are ids registered in `api.ts` (`apiSchemas`). */
export interface RouteDoc {
  summary: string;
  tags: string[];
  /** Which bearer credential the route takes. */
  auth?: 'session' | 'streamKey' | 'whipSession' | 'node' | 'metrics';
  request?: { contentType: string; schema?: string; description?: string };
  /** `contentType`: the media type of the body, or each one it can have (e.g. MP4 or WebM). */
  responses: Record<`${number}`, { description: string; schema?: string; contentType?: string | string[]; headers?: string[] }>;
}

export interface Route {
  method: HttpMethod;
  /** Path pattern with `:name` segments, e.g. `/whip/sessions/:sessionId`. */
  path: string;
  handler: Handler;
  /** Request bodies larger than this are refused with 413 before the handler runs. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Published in /api/openapi.json. Every public route has one (a test checks). */
  doc?: RouteDoc;
}
