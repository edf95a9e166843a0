/**
 * Text people type (chat messages, channel titles and descriptions), checked
 * in one place for the HTTP API (`api.ts`) and the socket (`protocol.ts`):
 * no NUL (Postgres refuses it) and no other control characters, which have no
 * business in chat or a title. Multi-line text keeps tab and line breaks.
 */
import { z } from 'zod';

/** True for C0 controls, DEL and C1 controls; tab, LF and CR only when `multiline` is false. */
export function hasControlCharacter(text: string, multiline: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x09 || c === 0x0a || c === 0x0d) {
      if (!multiline) return true;
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

export interface PlainTextOptions {
  /** Longest accepted text, in UTF-16 code units (after trimming when `trim`). */
  max: number;
  /** Shortest accepted text (default 0). */
  min?: number;
  /** Allow tab and line breaks (default false: one line). */
  multiline?: boolean;
  /** Trim surrounding white space before checking the length (default false). */
  trim?: boolean;
}

/** A zod string for text a person typed: bounded, without control characters. */
export function plainText(opts: PlainTextOptions) {
  const multiline = opts.multiline ?? false;
  const base = opts.trim ? z.string().trim() : z.string();
  return base
    .min(opts.min ?? 0)
    .max(opts.max)
    .refine((s) => !hasControlCharacter(s, multiline), {
      message: multiline
        ? 'must not contain control characters (other than tab and line breaks)'
        : 'must be one line of text without control characters',
    });
}
