import { createHash, timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import { bearerToken } from '../body.ts';
import { errorResponse, jsonResponse } from '../errors.ts';
import type { Route } from '../types.ts';

export interface OpsRoutesOptions {
  /** Each check resolves true when that dependency is usable. */
  readiness: { database(): Promise<boolean>; media(): boolean };
  metrics: Registry;
  /** True once shutdown has begun: readiness fails so load balancers drain the node. */
  shuttingDown(): boolean;
  /** When set, `/metrics` needs `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string | undefined;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares in constant time (over digests, so the lengths do not leak either). */
function sameSecret(given: string | null, expected: string): boolean {
  return given !== null && timingSafeEqual(digest(given), digest(expected));
}

export function opsRoutes(opts: OpsRoutesOptions): Route[] {
  return [
    {
      method: 'GET',
      path: '/healthz',
      doc: {
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        responses: { '200': { description: 'Alive', schema: 'Health' } },
      },
      handler: () => jsonResponse({ status: 'ok' }, 200, { 'cache-control': 'no-store' }),
    },
    {
      method: 'GET',
      path: '/readyz',
      doc: {
        tags: ['operations'],
        summary: 'Readiness: database reachable and media workers running',
        responses: {
          '200': { description: 'Ready', schema: 'Readiness' },
          '503': { description: 'Not ready, or shutting down', schema: 'Readiness' },
        },
      },
      async handler() {
        const database = await opts.readiness.database().catch(() => false);
        const media = opts.readiness.media();
        const ready = database && media && !opts.shuttingDown();
        return jsonResponse({ status: ready ? 'ready' : 'not_ready', checks: { database, media } }, ready ? 200 : 503, {
          'cache-control': 'no-store',
        });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      doc: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        ...(opts.metricsToken ? { auth: 'metrics' as const } : {}),
        responses: {
          '200': { description: 'Prometheus text format', contentType: 'text/plain' },
          '401': { description: 'METRICS_TOKEN is set and the request does not carry it', schema: 'Error' },
        },
      },
      async handler(req) {
        if (opts.metricsToken && !sameSecret(bearerToken(req), opts.metricsToken)) {
          return errorResponse(401, 'unauthorized', 'Send the metrics token as a Bearer token', {
            'www-authenticate': 'Bearer realm="whipcast-metrics"',
          });
        }
        return new Response(await opts.metrics.metrics(), {
          headers: { 'content-type': opts.metrics.contentType, 'cache-control': 'no-store' },
        });
      },
    },
  ];
}
