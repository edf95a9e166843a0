import { describeFailure } from '../errors.ts';

/** Every API error body is `{ error: { code, message } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The HTTP error an error stands for: itself, or a domain or SFU failure through the one mapping (`../errors.ts`); null for a bug (500). */
export function asHttpError(err: unknown): HttpError | null {
  if (err instanceof HttpError) return err;
  const f = describeFailure(err);
  if (!f) return null;
  return new HttpError(f.status, f.code, f.message, f.retryAfterMs ? { 'retry-after': String(Math.ceil(f.retryAfterMs / 1000)) } : {});
}

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  const body: ErrorBody = { error: { code, message } };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}
