/**
 * The OpenAPI 3.1 document served at /api/openapi.json, built from the docs
 * the routes themselves carry; body schemas come from the zod definitions in
 * api.ts. Tests check every public route is documented and validate real
 * responses against these schemas.
 */
import { z } from 'zod';
import { apiSchemas } from '../api.ts';
import type { Route } from './types.ts';

export function buildOpenApiDocument(routes: readonly Route[], version: string): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(apiSchemas, { uri: (id) => `#/components/schemas/${id}` });
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { method, path, doc: op } of routes) {
    if (!op) continue;
    const oaPath = path.replace(/:(\w+)/g, '{$1}');
    const params = [...path.matchAll(/:(\w+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const responses: Record<string, unknown> = {};
    const documented = { ...op.responses, '500': op.responses['500'] ?? { description: 'Unexpected server error', schema: 'Error' } };
    for (const [status, r] of Object.entries(documented)) {
      const contentTypes = [r.contentType ?? 'application/json'].flat();
      const body = r.schema ? { schema: { $ref: `#/components/schemas/${r.schema}` } } : {};
      responses[status] = {
        description: r.description,
        ...(r.schema || r.contentType ? { content: Object.fromEntries(contentTypes.map((t) => [t, body])) } : {}),
        ...(r.headers ? { headers: Object.fromEntries(r.headers.map((h) => [h, { schema: { type: 'string' } }])) } : {}),
      };
    }
    (paths[oaPath] ??= {})[method.toLowerCase()] = {
      summary: op.summary,
      tags: op.tags,
      ...(params.length ? { parameters: params } : {}),
      ...(op.auth ? { security: [{ [op.auth]: [] }] } : {}),
      ...(op.request
        ? {
            requestBody: {
              required: true,
              ...(op.request.description ? { description: op.request.description } : {}),
              content: {
                [op.request.contentType]: op.request.schema ? { schema: { $ref: `#/components/schemas/${op.request.schema}` } } : {},
              },
            },
          }
        : {}),
      responses,
    };
  }
  const cleaned = Object.fromEntries(
    Object.entries(schemas).map(([id, s]) => {
      const { $schema: _drop, $id: _id, ...rest } = s as Record<string, unknown>;
      return [id, rest];
    }),
  );
  return {
    openapi: '3.1.0',
    info: {
      title: 'whipcast',
      version,
      description: 'HTTP API of whipcast. Errors are `{ "error": { "code", "message" } }` with the matching status.',
    },
    paths,
    components: {
      schemas: cleaned,
      securitySchemes: {
        session: { type: 'http', scheme: 'bearer', description: 'Session token from /api/auth/login or /register' },
        streamKey: { type: 'http', scheme: 'bearer', description: 'Stream key (WHIP ingest)' },
        whipSession: { type: 'http', scheme: 'bearer', description: 'The stream key that created the WHIP session' },
        node: { type: 'http', scheme: 'bearer', description: 'Node-to-node credential derived from the shared WHIPCAST_SECRET' },
        metrics: { type: 'http', scheme: 'bearer', description: 'The METRICS_TOKEN setting' },
      },
    },
  };
}

/** GET /api/openapi.json, documenting the given routes plus itself. */
export function openApiRoute(routes: () => readonly Route[], version: string): Route {
  let cached: string | undefined;
  const self: Route = {
    method: 'GET',
    path: '/api/openapi.json',
    doc: {
      tags: ['meta'],
      summary: 'This document',
      responses: { '200': { description: 'OpenAPI 3.1 document', contentType: 'application/json' } },
    },
    handler() {
      cached ??= JSON.stringify(buildOpenApiDocument(routes(), version));
      return new Response(cached, { headers: { 'content-type': 'application/json; charset=utf-8' } });
    },
  };
  return self;
}
