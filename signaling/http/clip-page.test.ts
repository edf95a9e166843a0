/**
 * A clip's page as a link-preview crawler sees it: the app shell with Open
 * Graph tags filled in by the server (escaped), and the plain shell for
 * anything that is not an existing clip.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiStream } from '../api.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const site = mkdtempSync(join(tmpdir(), 'whipcast-clip-page-'));
const SHELL = '<!doctype html><html><head><meta charset="utf-8"><script>boot()</script></head><body><div id="app"></div></body></html>';
let s: TestServer;

beforeAll(async () => {
  writeFileSync(join(site, '200.html'), SHELL);
  s = await startTestServer({ env: { WEB_DIR: site, PUBLIC_URL: 'https://clips.example' } });
});
afterAll(async () => {
  await s?.close();
  rmSync(site, { recursive: true, force: true });
});

/** `property → content` of the page's meta tags, unescaped as a browser or crawler would read them. */
function metaOf(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  const unescape = (t: string) => t.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  for (const m of html.matchAll(/<meta (?:property|name)="([^"]+)" content="([^"]*)">/g)) out[m[1]!] = unescape(m[2]!);
  return out;
}

describe('GET /clips/:id (the page)', () => {
  it('serves the app shell with og:title, og:type video.other, og:image (poster) and og:video (file), HTML-escaped', async () => {
    const user = await s.register('clip_maker');
    const title = 'Speedrun <script>alert("x")</script> & "friends"';
    const me = (await (await s.api('/api/live/streams/me', { headers: user.auth })).json()) as ApiStream;
    const put = await s.api(`/api/live/streams/${me.id}`, {
      method: 'PUT',
      headers: { ...user.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title, description: '' }),
    });
    expect(put.status).toBe(200);
    const id = randomUUID();
    await s.app.db.clips.create({
      id,
      streamId: me.id,
      creatorId: user.user.id,
      container: 'mp4',
      durationMs: 30_000,
      bytes: 1000,
      hasPoster: true,
    });

    const res = await fetch(`${s.url}/clips/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    // the shell is intact (its inline script still matches the CSP hash) and the tags are in <head>
    expect(html).toContain('<script>boot()</script>');
    expect(html.indexOf('og:title')).toBeGreaterThan(0);
    expect(html.indexOf('og:title')).toBeLessThan(html.indexOf('</head>'));
    expect(html).not.toContain('<script>alert');
    expect(res.headers.get('content-security-policy')).toContain("'sha256-");
    const meta = metaOf(html);
    expect(meta).toMatchObject({
      'og:title': `Clip: ${title}`,
      'og:type': 'video.other',
      'og:url': `https://clips.example/clips/${id}`,
      'og:image': `https://clips.example/api/clips/${id}/poster`,
      'og:video': `https://clips.example/api/clips/${id}/download`,
      'og:video:type': 'video/mp4',
    });
    expect(meta['og:description']).toContain('clip_maker');
    expect(html).toMatch(/<title>Clip: Speedrun &#60;script&#62;/);
    // ETag of the filled-in page, not the shell's
    const shell = await fetch(`${s.url}/live/${me.id}`);
    expect(res.headers.get('etag')).not.toBe(shell.headers.get('etag'));

    // other pages, unknown clips and malformed ids: the plain shell
    for (const path of [`/live/${me.id}`, `/clips/${randomUUID()}`, '/clips/not-a-uuid']) {
      const page = await fetch(`${s.url}${path}`);
      expect(page.status, path).toBe(200);
      expect(await page.text(), path).toBe(SHELL);
    }
  });
});
