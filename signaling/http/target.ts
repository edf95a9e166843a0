/**
 * The request target as the client sent it, checked and split into segments.
 * Routing uses these raw segments only: no Host header, no URL normalisation
 * (`/x/../metrics`, `/%6detrics`, `//metrics` are not `/metrics`), so a proxy
 * that guards a path by its text cannot be walked around.
 */

/** RFC 3986 path characters (pchar and `/`); anything else (`#`, `\`, spaces, raw non-ASCII) is refused. */
const PATH_CHARS = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
/** RFC 3986 reg-name or bracketed IP literal, with an optional port. */
const HOST = /^(?:[A-Za-z0-9\-._~]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface RequestTarget {
  /** Raw (still percent-encoded) segments; empty segments kept, so `//a` and `/a/` do not match `/a`. */
  raw: string[];
  /** The same segments percent-decoded. */
  decoded: string[];
  /** The decoded path, `/`-joined. */
  path: string;
}

export class TargetError extends Error {
  override name = 'TargetError';
}

/** Parses a raw request path (no query). Throws TargetError for anything that is not a clean path. */
export function parseTarget(rawPath: string): RequestTarget {
  if (!PATH_CHARS.test(rawPath)) throw new TargetError('The request path has characters a URL path cannot have');
  const raw = rawPath === '/' ? [] : rawPath.slice(1).split('/');
  const decoded = raw.map((seg) => {
    let value: string;
    try {
      value = decodeURIComponent(seg);
    } catch {
      throw new TargetError('The request path has a bad percent-encoding');
    }
    if (value === '.' || value === '..') throw new TargetError('The request path has a dot segment');
    if (value.includes('/') || value.includes('\\') || CONTROL.test(value)) {
      throw new TargetError('The request path encodes a slash, backslash or control character');
    }
    return value;
  });
  return { raw, decoded, path: `/${decoded.join('/')}` };
}

/** True when a Host header value is a host name or IP literal with an optional port (RFC 9110 §7.2). */
export function validHost(value: string): boolean {
  return HOST.test(value);
}
