import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../testing.ts';

describe('OpenAPI document', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('documents every route the server registers, and only those', async () => {
    const routes = s.app.router.routes;
    const undocumented = routes.filter((r) => !r.doc).map((r) => `${r.method} ${r.path}`);
    expect(undocumented).toEqual([]);
    const doc = (await (await s.api('/api/openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    const registered = routes.map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    expect(documented.sort()).toEqual(registered.sort());
  });

  it('references only schemas that exist', async () => {
    const text = await (await s.api('/api/openapi.json')).text();
    const doc = JSON.parse(text) as { components: { schemas: Record<string, unknown> } };
    const refs = [...text.matchAll(/"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs) expect(doc.components.schemas, ref).toHaveProperty(ref);
  });

  it('lists both containers a recording or clip can be (MP4 for H.264, WebM for VP8) for its download and playback', async () => {
    type Op = { responses: Record<string, { content?: Record<string, unknown> }> };
    const doc = (await (await s.api('/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, Op>>;
      components: { schemas: Record<string, { required?: string[] }> };
    };
    for (const path of ['/api/recordings/{id}/download', '/api/recordings/{id}/playback', '/api/clips/{id}/download']) {
      for (const status of ['200', '206']) {
        expect(Object.keys(doc.paths[path]!.get!.responses[status]!.content ?? {}), `${path} ${status}`).toEqual([
          'video/mp4',
          'video/webm',
        ]);
      }
    }
    expect(doc.components.schemas.Recording?.required).toContain('streamId');
    // the fixed clip paths (issue #14 item 5) and the fields other tools read
    for (const [path, method] of [
      ['/api/live/streams/{id}/clips', 'post'],
      ['/api/clips/{id}', 'get'],
      ['/api/clips/{id}', 'delete'],
      ['/api/clips/{id}/download', 'get'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(doc.components.schemas.Clip?.required?.sort()).toEqual(
      ['id', 'streamId', 'durationMs', 'createdAt', 'creator', 'downloadUrl', 'posterUrl'].sort(),
    );
    expect(doc.components.schemas.ClipCreated?.required?.sort()).toEqual(['downloadUrl', 'id', 'url']);
  });
});
