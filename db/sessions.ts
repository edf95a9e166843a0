import type { Sql } from './connect.ts';
import type { User } from './users.ts';

export function sessionsQueries(sql: Sql) {
  return {
    async create(userId: string, tokenHash: Buffer, expiresAt: Date): Promise<void> {
      await sql`INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (${tokenHash}, ${userId}, ${expiresAt})`;
    },

    /** The user owning an unexpired session, or null. */
    async findUser(tokenHash: Buffer): Promise<User | null> {
      const [row] = await sql<User[]>`
        SELECT u.id, u.username, u.created_at
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = ${tokenHash} AND s.expires_at > now()`;
      return row ?? null;
    },

    async delete(tokenHash: Buffer): Promise<void> {
      await sql`DELETE FROM sessions WHERE token_hash = ${tokenHash}`;
    },

    /** Removes expired sessions; returns how many. */
    async deleteExpired(): Promise<number> {
      const result = await sql`DELETE FROM sessions WHERE expires_at <= now()`;
      return result.count;
    },
  };
}
