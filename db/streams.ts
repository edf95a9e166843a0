import type { Sql } from './connect.ts';

export type StreamStatus = 'live' | 'offline';

export interface Stream {
  id: string;
  ownerId: string;
  ownerUsername: string;
  title: string;
  description: string;
  status: StreamStatus;
  startedAt: Date | null;
  endedAt: Date | null;
  /** The owner's "Save past broadcasts": live sessions are recorded (default on). */
  saveRecordings: boolean;
}

export interface NewChannel {
  streamId: string;
  ownerId: string;
  keyHash: Buffer;
  keySalt: Buffer;
}

const STREAM_COLUMNS = (sql: Sql) => sql`
  s.id, s.owner_id, u.username AS owner_username, s.title, s.description, s.status, s.started_at, s.ended_at,
  s.save_recordings`;

export function streamsQueries(sql: Sql) {
  const columns = STREAM_COLUMNS(sql);
  return {
    async get(id: string): Promise<Stream | null> {
      const [row] = await sql<Stream[]>`
        SELECT ${columns} FROM streams s JOIN users u ON u.id = s.owner_id WHERE s.id = ${id}`;
      return row ?? null;
    },

    async findByOwner(ownerId: string): Promise<Stream | null> {
      const [row] = await sql<Stream[]>`
        SELECT ${columns} FROM streams s JOIN users u ON u.id = s.owner_id WHERE s.owner_id = ${ownerId}`;
      return row ?? null;
    },

    /**
     * Creates a channel, its chat room and its first stream key in one
     * transaction: either all three exist afterwards or none does.
     * Throws a unique violation on `streams_owner_id_key` if the owner already has one.
     */
    async createChannel(c: NewChannel): Promise<void> {
      await sql.begin(async (tx) => {
        await tx`INSERT INTO streams (id, owner_id) VALUES (${c.streamId}, ${c.ownerId})`;
        await tx`INSERT INTO rooms (id) VALUES (${c.streamId})`;
        await tx`INSERT INTO stream_keys (stream_id, key_hash, salt) VALUES (${c.streamId}, ${c.keyHash}, ${c.keySalt})`;
      });
    },

    async update(id: string, fields: { title: string; description: string }): Promise<void> {
      await sql`
        UPDATE streams SET title = ${fields.title}, description = ${fields.description}, updated_at = now()
        WHERE id = ${id}`;
    },

    /** Marks a channel live; `started_at` is kept when it already was (publisher reconnect). */
    async setLive(id: string): Promise<void> {
      await sql`
        UPDATE streams
        SET status = 'live', started_at = CASE WHEN status = 'live' THEN started_at ELSE now() END,
            ended_at = NULL, updated_at = now()
        WHERE id = ${id}`;
    },

    async setOffline(id: string): Promise<void> {
      await sql`
        UPDATE streams SET status = 'offline', ended_at = now(), updated_at = now()
        WHERE id = ${id} AND status = 'live'`;
    },

    /** Marks the given live channels offline (or all of them when `ids` is omitted). */
    async setAllOffline(ids?: string[]): Promise<number> {
      const result = ids
        ? await sql`UPDATE streams SET status = 'offline', ended_at = now() WHERE status = 'live' AND id = ANY(${ids})`
        : await sql`UPDATE streams SET status = 'offline', ended_at = now() WHERE status = 'live'`;
      return result.count;
    },

    async listLive(limit = 100): Promise<Stream[]> {
      return sql<Stream[]>`
        SELECT ${columns} FROM streams s JOIN users u ON u.id = s.owner_id
        WHERE s.status = 'live' ORDER BY s.started_at DESC LIMIT ${limit}`;
    },
  };
}
