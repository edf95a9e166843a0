import type { Sql } from './connect.ts';

export interface ChatMessage {
  id: number;
  roomId: string;
  userId: string;
  username: string;
  body: string;
  createdAt: Date;
}

interface ChatMessageRow extends Omit<ChatMessage, 'id'> {
  id: string;
}

const toMessage = (row: ChatMessageRow): ChatMessage => ({ ...row, id: Number(row.id) });

export function chatQueries(sql: Sql) {
  return {
    /** Persists a message; the returned id and time are the server's. */
    async insert(roomId: string, userId: string, body: string): Promise<ChatMessage> {
      const [row] = await sql<ChatMessageRow[]>`
        WITH m AS (
          INSERT INTO chat_messages (room_id, user_id, body) VALUES (${roomId}, ${userId}, ${body})
          RETURNING id, room_id, user_id, body, created_at
        )
        SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created_at
        FROM m JOIN users u ON u.id = m.user_id`;
      return toMessage(row!);
    },

    /** Newest-first page of visible messages, older than `beforeId` when given. */
    async history(roomId: string, opts: { limit: number; beforeId?: number | undefined }): Promise<ChatMessage[]> {
      const before = opts.beforeId ?? Number.MAX_SAFE_INTEGER;
      const rows = await sql<ChatMessageRow[]>`
        SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created_at
        FROM chat_messages m JOIN users u ON u.id = m.user_id
        WHERE m.room_id = ${roomId} AND m.deleted_at IS NULL AND m.id < ${before}
        ORDER BY m.id DESC LIMIT ${opts.limit}`;
      return rows.map(toMessage);
    },

    async get(roomId: string, id: number): Promise<ChatMessage | null> {
      const [row] = await sql<ChatMessageRow[]>`
        SELECT m.id, m.room_id, m.user_id, u.username, m.body, m.created_at
        FROM chat_messages m JOIN users u ON u.id = m.user_id
        WHERE m.room_id = ${roomId} AND m.id = ${id} AND m.deleted_at IS NULL`;
      return row ? toMessage(row) : null;
    },

    /** Soft-deletes a message; false when it did not exist or was already deleted. */
    async delete(roomId: string, id: number, by: string): Promise<boolean> {
      const result = await sql`
        UPDATE chat_messages SET deleted_at = now(), deleted_by = ${by}
        WHERE room_id = ${roomId} AND id = ${id} AND deleted_at IS NULL`;
      return result.count > 0;
    },

    /** Time of the user's latest message in the room (for slow mode), or null. */
    async lastMessageAt(roomId: string, userId: string): Promise<Date | null> {
      const [row] = await sql<{ createdAt: Date }[]>`
        SELECT created_at FROM chat_messages WHERE room_id = ${roomId} AND user_id = ${userId}
        ORDER BY id DESC LIMIT 1`;
      return row?.createdAt ?? null;
    },
  };
}
