import type { Registry } from 'prom-client';
import { jsonResponse } from '../errors.ts';
import type { Route } from '../types.ts';

export interface OpsRoutesOptions {
  /** Each check resolves true when that dependency is usable. */
  readiness: { database(): Promise<boolean>; media(): boolean };
  metrics: Registry;
  /** True once shutdown has begun: readiness fails so load balancers drain the node. */
  shuttingDown(): boolean;
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
        responses: { '200': { description: 'Prometheus text format', contentType: 'text/plain' } },
      },
      async handler() {
        return new Response(await opts.metrics.metrics(), { headers: { 'content-type': opts.metrics.contentType } });
      },
    },
  ];
}
