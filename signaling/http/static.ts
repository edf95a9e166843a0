/**
 * Serves the built SvelteKit app (adapter-static, SPA fallback) from memory.
 * Files are read once at start; hashed assets under `_app/immutable/` are
 * cached forever, everything else revalidates. Precompressed `.br`/`.gz`
 * siblings are served when the client accepts them.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import type { Handler } from './types.ts';
import { errorResponse } from './errors.ts';
import { htmlSecurityHeaders, inlineScriptHashes, isEmbeddable } from './security-headers.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

type Bytes = Uint8Array<ArrayBuffer>;

interface StaticFile {
  body: Bytes;
  br?: Bytes;
  gzip?: Bytes;
  type: string;
  etag: string;
  immutable: boolean;
  /** HTML only: CSP sources for its inline scripts. */
  scriptHashes?: string[];
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
  }
  return out;
}

export async function loadStaticSite(dir: string): Promise<Map<string, StaticFile> | null> {
  try {
    if (!(await stat(dir)).isDirectory()) return null;
  } catch {
    return null;
  }
  const files = new Map<string, StaticFile>();
  const all = await walk(dir);
  const present = new Set(all);
  for (const full of all) {
    if (full.endsWith('.br') || full.endsWith('.gz')) continue;
    const body = new Uint8Array(await readFile(full));
    const path = '/' + relative(dir, full).split(sep).join('/');
    const file: StaticFile = {
      body,
      type: TYPES[extname(full)] ?? 'application/octet-stream',
      etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`,
      immutable: path.startsWith('/_app/immutable/'),
    };
    if (file.type.startsWith('text/html')) file.scriptHashes = inlineScriptHashes(new TextDecoder().decode(body));
    if (present.has(`${full}.br`)) file.br = new Uint8Array(await readFile(`${full}.br`));
    if (present.has(`${full}.gz`)) file.gzip = new Uint8Array(await readFile(`${full}.gz`));
    files.set(path, file);
  }
  return files;
}

export interface StaticOptions {
  /** Origins besides the page's own that pages may fetch from (CSP connect-src). */
  connectSources?: string[];
  /**
   * Extra `<head>` markup for a client-side route (the app shell is served): e.g. Open Graph tags of a
   * clip's page, which link previews read without running the app. Must return escaped HTML, or null.
   */
  headTags?: (path: string, req: Request) => Promise<string | null>;
}

/** Static files with SPA fallback to `/index.html` (or `/200.html`) for page routes. */
export function staticHandler(files: Map<string, StaticFile> | null, options: StaticOptions = {}): Handler {
  return async (req, { path }) => {
    // Server namespaces are never answered with the app (`/internal/*` exists only on clustered nodes).
    if (/^\/(api|whip|whep|ws|internal)(\/|$)/.test(path)) return errorResponse(404, 'not_found', 'No such resource');
    if (!files) {
      return new Response('The web UI is not built. Run `npm run build` (the start script does it).\n', {
        status: 503,
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      });
    }
    let file = files.get(path) ?? files.get(path.endsWith('/') ? `${path}index.html` : `${path}.html`);
    if (!file) {
      // Unknown asset paths are real 404s; anything else is a client-side route.
      if (path.startsWith('/_app/') || extname(path)) return errorResponse(404, 'not_found', 'No such file');
      file = files.get('/200.html') ?? files.get('/index.html');
      if (!file) return errorResponse(404, 'not_found', 'No such file');
      const tags = options.headTags ? await options.headTags(path, req) : null;
      if (tags) file = withHeadTags(file, tags);
    }
    const headers: Record<string, string> = {
      'content-type': file.type,
      etag: file.etag,
      'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      vary: 'accept-encoding',
    };
    if (file.scriptHashes) {
      Object.assign(
        headers,
        htmlSecurityHeaders({
          scriptHashes: file.scriptHashes,
          connectSources: options.connectSources ?? [],
          embeddable: isEmbeddable(path),
        }),
      );
    }
    if (req.headers.get('if-none-match') === file.etag) return new Response(null, { status: 304, headers });
    const accept = req.headers.get('accept-encoding') ?? '';
    let body = file.body;
    if (file.br && /\bbr\b/.test(accept)) {
      body = file.br;
      headers['content-encoding'] = 'br';
    } else if (file.gzip && /\bgzip\b/.test(accept)) {
      body = file.gzip;
      headers['content-encoding'] = 'gzip';
    }
    return new Response(body, { status: 200, headers });
  };
}

/** The shell with `tags` inserted before `</head>` (served uncompressed; its own ETag). */
function withHeadTags(file: StaticFile, tags: string): StaticFile {
  const html = new TextDecoder().decode(file.body);
  const at = html.search(/<\/head>/i);
  const out = at < 0 ? html : `${html.slice(0, at)}${tags}\n${html.slice(at)}`;
  const body = new TextEncoder().encode(out) as Bytes;
  return {
    body,
    type: file.type,
    etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`,
    immutable: false,
    ...(file.scriptHashes ? { scriptHashes: file.scriptHashes } : {}),
  };
}
