/**
 * Failures a client can act on, and the one mapping from them to what the
 * HTTP API (status + code) and the socket (`ErrorCode`) answer with.
 *
 * Domain modules (accounts, channels, chat, the socket's rtc handlers) throw a
 * `DomainError` with a code from `FAILURES`; the SFU throws `SfuError` and
 * `SdpError`. `describeFailure` turns any of them into one `Failure`; anything
 * else is a bug (500 / `internal`, logged by the caller).
 */
import { SdpError, SfuError } from '@whipcast/sfu';
import type { ErrorCode } from './protocol.ts';

/** Every failure code: its HTTP status and the code a socket request answers with. */
const FAILURES = {
  bad_frame: { status: 400, socket: 'bad_frame' },
  too_large: { status: 413, socket: 'too_large' },
  rate_limited: { status: 429, socket: 'rate_limited' },
  unauthorized: { status: 401, socket: 'unauthorized' },
  forbidden: { status: 403, socket: 'forbidden' },
  timed_out: { status: 403, socket: 'timed_out' },
  slow_mode: { status: 429, socket: 'slow_mode' },
  not_found: { status: 404, socket: 'not_found' },
  not_joined: { status: 409, socket: 'not_joined' },
  stream_offline: { status: 404, socket: 'stream_offline' },
  unavailable: { status: 503, socket: 'unavailable' },
  username_taken: { status: 409, socket: 'forbidden' },
  invalid_credentials: { status: 401, socket: 'unauthorized' },
  stream_key_unrecoverable: { status: 409, socket: 'unavailable' },
  malformed_sdp: { status: 400, socket: 'bad_frame' },
  unsupported_media: { status: 422, socket: 'unavailable' },
} as const satisfies Record<string, { status: number; socket: ErrorCode }>;

export type FailureCode = keyof typeof FAILURES;

/** A request failed for a reason the client can act on. */
export class DomainError<C extends FailureCode = FailureCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    /** When trying again makes sense (rate limits, timeouts). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export interface Failure {
  code: FailureCode;
  message: string;
  /** HTTP status for the API and WHIP/WHEP routes. */
  status: number;
  /** What a socket request answers with. */
  socketCode: ErrorCode;
  /** Whole milliseconds. */
  retryAfterMs?: number;
}

function failure(code: FailureCode, message: string, retryAfterMs?: number): Failure {
  const { status, socket } = FAILURES[code];
  return { code, message, status, socketCode: socket, ...(retryAfterMs ? { retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)) } : {}) };
}

/** The failure an error stands for, or null for an unexpected error (a bug: answer 500 / `internal`). */
export function describeFailure(err: unknown): Failure | null {
  if (err instanceof DomainError) return failure(err.code, err.message, err.retryAfterMs);
  if (err instanceof SdpError) return failure(err.code, err.message);
  if (err instanceof SfuError) return failure(err.code, err.message, err.code === 'unavailable' ? 5000 : undefined);
  return null;
}
