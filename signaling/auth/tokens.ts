import { createHash, createHmac, randomBytes } from 'node:crypto';

/** A 256-bit random secret, URL-safe. */
export function newToken(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** Tokens are high-entropy, so a fast hash is enough to keep them out of the database. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

export const SESSION_TOKEN_PREFIX = 'wcs_';
export const STREAM_KEY_PREFIX = 'wck_';

/**
 * Stream keys are derived from the server secret, the channel id and a per-key
 * random salt, so the server can show a streamer their key again without the
 * database ever holding it: a database dump alone cannot publish to a channel.
 */
export function deriveStreamKey(secret: string, channelId: string, salt: Buffer): string {
  const mac = createHmac('sha256', secret).update(`whipcast-stream-key\0${channelId}\0`).update(salt).digest('base64url');
  return `${STREAM_KEY_PREFIX}${mac}`;
}
