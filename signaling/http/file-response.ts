/**
 * A file (or its first `length` bytes: a recording still being written) as an
 * HTTP response with single-range `Range` support (RFC 9110 §14): 206 with
 * `Content-Range`, 416 for a range outside the file, 200 otherwise. Several
 * ranges in one request are answered with the whole file, which RFC 9110 allows.
 * The body streams from disk.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { errorResponse } from './errors.ts';

export interface FileResponseOptions {
  contentType: string;
  /** Bytes of the file to serve (its size, or less for a growing file). */
  length: number;
  /** Default `no-cache` (revalidate: a growing file changes). */
  cacheControl?: string;
  /** e.g. `attachment; filename="…"`. */
  contentDisposition?: string;
}

/** Parses a `Range` header against `length` bytes: a [start, end] (inclusive), 'unsatisfiable', or null (serve the whole file). */
export function parseRange(header: string | null, length: number): [number, number] | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multiple or malformed ranges: the whole file
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, length - suffix);
    end = length - 1;
  } else {
    start = Number(a);
    end = b === '' ? length - 1 : Math.min(Number(b), length - 1);
    if (b !== '' && Number(b) < start) return null; // invalid: ignored (RFC 9110 §14.1.1)
  }
  if (start >= length || length === 0) return 'unsatisfiable';
  return [start, end];
}

export function fileResponse(req: Request, path: string, opts: FileResponseOptions): Response {
  const headers: Record<string, string> = {
    'content-type': opts.contentType,
    'accept-ranges': 'bytes',
    'cache-control': opts.cacheControl ?? 'no-cache',
    ...(opts.contentDisposition ? { 'content-disposition': opts.contentDisposition } : {}),
  };
  const range = parseRange(req.headers.get('range'), opts.length);
  if (range === 'unsatisfiable') {
    return errorResponse(416, 'range_not_satisfiable', `The range is outside the ${opts.length} bytes available`, {
      'content-range': `bytes */${opts.length}`,
    });
  }
  const [start, end] = range ?? [0, opts.length - 1];
  const size = Math.max(0, end - start + 1);
  headers['content-length'] = String(size);
  if (range) headers['content-range'] = `bytes ${start}-${end}/${opts.length}`;
  const status = range ? 206 : 200;
  if (req.method === 'HEAD' || size === 0) return new Response(null, { status, headers });
  const body = Readable.toWeb(createReadStream(path, { start, end, highWaterMark: 256 * 1024 })) as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}
