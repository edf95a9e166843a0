import type { Sql } from './connect.ts';

export interface StreamKeyRecord {
  keyHash: Buffer;
  salt: Buffer;
}

export function streamKeysQueries(sql: Sql) {
  return {
    async get(streamId: string): Promise<StreamKeyRecord | null> {
      const [row] = await sql<StreamKeyRecord[]>`SELECT key_hash, salt FROM stream_keys WHERE stream_id = ${streamId}`;
      return row ?? null;
    },

    /** Replaces the channel's key: the previous one stops matching immediately. */
    async replace(streamId: string, record: StreamKeyRecord): Promise<void> {
      await sql`
        INSERT INTO stream_keys (stream_id, key_hash, salt) VALUES (${streamId}, ${record.keyHash}, ${record.salt})
        ON CONFLICT (stream_id) DO UPDATE SET key_hash = EXCLUDED.key_hash, salt = EXCLUDED.salt, created_at = now()`;
    },

    async findStreamId(keyHash: Buffer): Promise<string | null> {
      const [row] = await sql<{ streamId: string }[]>`SELECT stream_id FROM stream_keys WHERE key_hash = ${keyHash}`;
      return row?.streamId ?? null;
    },
  };
}
