import type { z } from 'zod';
import { HttpError } from './errors.ts';

/** Parses a JSON body against a schema: 415 for another content type, 400 for bad JSON or fields. */
export async function readJson<T extends z.ZodType>(req: Request, schema: T): Promise<z.infer<T>> {
  const type = req.headers.get('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'Send the body as application/json');
  }
  let value: unknown;
  try {
    value = JSON.parse(await req.text());
  } catch {
    throw new HttpError(400, 'invalid_json', 'The body is not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new HttpError(400, 'invalid_body', detail);
  }
  return parsed.data;
}

/** The bearer token of the request, or null. */
export function bearerToken(req: Request): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get('authorization') ?? '');
  return m?.[1] ?? null;
}
