import type { Sql } from './connect.ts';

export interface Room {
  id: string;
  ownerId: string;
  isPublic: boolean;
  slowModeSeconds: number;
  streamStatus: 'live' | 'offline';
}

export interface RoomBan {
  userId: string;
  /** null for a ban, a time for a timeout. */
  expiresAt: Date | null;
  reason: string;
}

export function roomsQueries(sql: Sql) {
  return {
    async get(id: string): Promise<Room | null> {
      const [row] = await sql<Room[]>`
        SELECT r.id, s.owner_id, r.is_public, r.slow_mode_seconds, s.status AS stream_status
        FROM rooms r JOIN streams s ON s.id = r.id WHERE r.id = ${id}`;
      return row ?? null;
    },

    async setSlowMode(id: string, seconds: number): Promise<void> {
      await sql`UPDATE rooms SET slow_mode_seconds = ${seconds} WHERE id = ${id}`;
    },

    /** Bans (expiresAt null) or times out a user; replaces any earlier ban. */
    async ban(roomId: string, userId: string, opts: { expiresAt: Date | null; reason: string; by: string }): Promise<void> {
      await sql`
        INSERT INTO room_bans (room_id, user_id, expires_at, reason, created_by)
        VALUES (${roomId}, ${userId}, ${opts.expiresAt}, ${opts.reason}, ${opts.by})
        ON CONFLICT (room_id, user_id) DO UPDATE
        SET expires_at = EXCLUDED.expires_at, reason = EXCLUDED.reason,
            created_by = EXCLUDED.created_by, created_at = now()`;
    },

    async unban(roomId: string, userId: string): Promise<boolean> {
      const result = await sql`DELETE FROM room_bans WHERE room_id = ${roomId} AND user_id = ${userId}`;
      return result.count > 0;
    },

    /** Bans and timeouts in force in a room, newest first, with each user's name (at most 500). */
    async activeBans(roomId: string): Promise<(RoomBan & { username: string })[]> {
      return sql<(RoomBan & { username: string })[]>`
        SELECT b.user_id, u.username, b.expires_at, b.reason FROM room_bans b JOIN users u ON u.id = b.user_id
        WHERE b.room_id = ${roomId} AND (b.expires_at IS NULL OR b.expires_at > now())
        ORDER BY b.created_at DESC LIMIT 500`;
    },

    /** The ban or timeout in force for this user, if any. */
    async activeBan(roomId: string, userId: string): Promise<RoomBan | null> {
      const [row] = await sql<RoomBan[]>`
        SELECT user_id, expires_at, reason FROM room_bans
        WHERE room_id = ${roomId} AND user_id = ${userId} AND (expires_at IS NULL OR expires_at > now())`;
      return row ?? null;
    },
  };
}
