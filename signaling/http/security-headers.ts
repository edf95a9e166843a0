/**
 * Browser-facing hardening headers. Every response gets the basic ones; HTML
 * pages also get a Content-Security-Policy that allows exactly what the built
 * app uses: its own scripts, styles, fetch/WebSocket to its own origin, and the
 * inline bootstrap scripts of each page by hash.
 */
import { createHash } from 'node:crypto';

/** On every response. */
export const BASE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

/** Pages under this prefix may be framed by any site (the embeddable player). */
export const EMBED_PREFIX = '/embed/';

export function isEmbeddable(path: string): boolean {
  return path.startsWith(EMBED_PREFIX) || path === EMBED_PREFIX.slice(0, -1);
}

/** `'sha256-…'` sources for the inline `<script>` elements of an HTML document. */
export function inlineScriptHashes(html: string): string[] {
  const hashes = new Set<string>();
  for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script\s*>/gi)) {
    if (/\bsrc\s*=/i.test(m[1]!)) continue;
    hashes.add(`'sha256-${createHash('sha256').update(m[2]!, 'utf8').digest('base64')}'`);
  }
  return [...hashes];
}

export interface HtmlPolicyOptions {
  /** From `inlineScriptHashes`. */
  scriptHashes: string[];
  /** Origins besides the page's own the app may fetch from (the WHIP URL's, when PUBLIC_URL is another origin). */
  connectSources: string[];
  /** Leave out frame-ancestors / X-Frame-Options (the embeddable player). */
  embeddable: boolean;
}

/** Headers for an HTML page. */
export function htmlSecurityHeaders(opts: HtmlPolicyOptions): Record<string, string> {
  const csp = [
    "default-src 'self'",
    ['script-src', "'self'", ...opts.scriptHashes].join(' '),
    "style-src 'self'",
    // Svelte and the page shell set style attributes; style sheets still come from 'self' only
    "style-src-attr 'unsafe-inline'",
    ['connect-src', "'self'", ...opts.connectSources].join(' '),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    ...(opts.embeddable ? [] : ["frame-ancestors 'none'"]),
  ].join('; ');
  return { 'content-security-policy': csp, ...(opts.embeddable ? {} : { 'x-frame-options': 'DENY' }) };
}

/** The origin of a URL, for connect-src; undefined when it is not an http(s) URL. */
export function originOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}
