import { randomBytes, randomUUID } from 'node:crypto';
import { isUniqueViolation, type Database, type Stream, type User } from '@whipcast/db';
import type { ApiChatBan, ApiStream, ApiStreamKey } from './api.ts';
import { deriveStreamKey, hashToken, STREAM_KEY_PREFIX } from './auth/tokens.ts';
import { DomainError } from './errors.ts';

export interface ChannelsOptions {
  db: Database;
  secret: string;
  /** Live viewer count of a channel (from the media layer / presence). */
  viewerCount(channelId: string): number;
  /** Called after a key rotation: a publisher using the old key must be ended. */
  onKeyRotated(channelId: string): void;
}

export interface Channels {
  /** The user's channel, created (with its room and key, atomically) on first use. */
  mine(user: User): Promise<Stream>;
  update(
    user: User,
    channelId: string,
    fields: { title: string; description: string; saveRecordings?: boolean | undefined },
  ): Promise<Stream>;
  key(user: User, whipUrl: string): Promise<ApiStreamKey>;
  rotateKey(user: User, whipUrl: string): Promise<ApiStreamKey>;
  /** The channel a stream key publishes to, or null for a wrong/rotated key. */
  authenticateStreamKey(key: string): Promise<{ streamId: string } | null>;
  get(channelId: string): Promise<Stream | null>;
  listLive(): Promise<Stream[]>;
  toApi(stream: Stream): ApiStream;
  /** Bans and timeouts in force in the user's own channel's chat. */
  bans(user: User): Promise<ApiChatBan[]>;
  /** The user's own ban or timeout in a channel's chat, if any (null for an unknown channel too). */
  restriction(user: User, channelId: string): Promise<ApiChatBan | null>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createChannels(opts: ChannelsOptions): Channels {
  const { db, secret } = opts;

  function newKey(channelId: string) {
    const salt = randomBytes(16);
    const key = deriveStreamKey(secret, channelId, salt);
    return { key, record: { keyHash: hashToken(key), salt } };
  }

  async function mine(user: User): Promise<Stream> {
    const existing = await db.streams.findByOwner(user.id);
    if (existing) return existing;
    const channelId = randomUUID();
    const { record } = newKey(channelId);
    try {
      await db.streams.createChannel({ streamId: channelId, ownerId: user.id, keyHash: record.keyHash, keySalt: record.salt });
    } catch (err) {
      // Two first requests raced: the other one created the channel.
      if (!isUniqueViolation(err)) throw err;
    }
    const created = await db.streams.findByOwner(user.id);
    if (!created) throw new Error('channel creation did not persist');
    return created;
  }

  async function ownedStream(user: User, channelId: string): Promise<Stream> {
    const stream = UUID.test(channelId) ? await db.streams.get(channelId) : null;
    if (!stream) throw new DomainError('not_found', 'No such stream');
    if (stream.ownerId !== user.id) throw new DomainError('forbidden', 'Only the channel owner can change it');
    return stream;
  }

  return {
    mine,

    async update(user, channelId, fields) {
      await ownedStream(user, channelId);
      await db.streams.update(channelId, { title: fields.title, description: fields.description });
      if (fields.saveRecordings !== undefined) await db.recordings.setSaveEnabled(channelId, fields.saveRecordings);
      return (await db.streams.get(channelId))!;
    },

    async key(user, whipUrl) {
      const stream = await mine(user);
      const stored = await db.streamKeys.get(stream.id);
      const key = stored ? deriveStreamKey(secret, stream.id, stored.salt) : null;
      if (!stored || !key || !hashToken(key).equals(stored.keyHash)) {
        // The server secret changed since the key was made: it cannot be shown again.
        throw new DomainError(
          'stream_key_unrecoverable',
          'The stream key cannot be recovered (the server secret changed); rotate it to get a new one',
        );
      }
      return { streamKey: key, whipUrl };
    },

    async rotateKey(user, whipUrl) {
      const stream = await mine(user);
      const { key, record } = newKey(stream.id);
      await db.streamKeys.replace(stream.id, record);
      opts.onKeyRotated(stream.id);
      return { streamKey: key, whipUrl };
    },

    async authenticateStreamKey(key) {
      if (!key.startsWith(STREAM_KEY_PREFIX)) return null;
      const channelId = await db.streamKeys.findStreamId(hashToken(key));
      return channelId ? { streamId: channelId } : null;
    },

    get: (channelId) => (UUID.test(channelId) ? db.streams.get(channelId) : Promise.resolve(null)),
    listLive: () => db.streams.listLive(),

    async bans(user) {
      const stream = await mine(user);
      const rows = await db.rooms.activeBans(stream.id);
      return rows.map((b) => ({
        userId: b.userId,
        username: b.username,
        kind: b.expiresAt ? 'timeout' : 'ban',
        until: b.expiresAt?.toISOString() ?? null,
      }));
    },

    async restriction(user, channelId) {
      if (!UUID.test(channelId)) return null;
      const b = await db.rooms.activeBan(channelId, user.id);
      if (!b) return null;
      return { userId: user.id, username: user.username, kind: b.expiresAt ? 'timeout' : 'ban', until: b.expiresAt?.toISOString() ?? null };
    },

    toApi(stream) {
      return {
        id: stream.id,
        title: stream.title,
        description: stream.description,
        status: stream.status,
        viewerCount: stream.status === 'live' ? opts.viewerCount(stream.id) : 0,
        startedAt: stream.status === 'live' && stream.startedAt ? stream.startedAt.toISOString() : null,
        owner: { id: stream.ownerId, username: stream.ownerUsername },
        saveRecordings: stream.saveRecordings,
      };
    },
  };
}
