import type { Sql } from './connect.ts';

/** Container of a recording or clip file: H.264 goes to MP4, VP8 to WebM. */
export type MediaContainer = 'mp4' | 'webm';

/** One live session's recording (a past broadcast once `endedAt` is set). */
export interface Recording {
  id: string;
  streamId: string;
  title: string;
  container: MediaContainer;
  startedAt: Date;
  /** `null` while being written, or until startup recovery repairs it. */
  endedAt: Date | null;
  durationMs: number;
  /** Bytes on disk (live file, download file and poster), counted against the quota. */
  bytes: number;
  downloadReady: boolean;
  hasPoster: boolean;
}

/** A short clip cut from a channel's DVR buffer. */
export interface Clip {
  id: string;
  streamId: string;
  /** `null` once the creator's account is gone. */
  creatorId: string | null;
  /** The creator's username, `null` once the account is gone. */
  creatorUsername: string | null;
  container: MediaContainer;
  durationMs: number;
  bytes: number;
  hasPoster: boolean;
  createdAt: Date;
}

const RECORDING_COLUMNS = (sql: Sql) => sql`
  id, stream_id, title, container, started_at, ended_at, duration_ms, bytes::float8 AS bytes,
  download_ready, has_poster`;

const CLIP_COLUMNS = (sql: Sql) => sql`
  c.id, c.stream_id, c.creator_id, u.username AS creator_username, c.container, c.duration_ms,
  c.bytes::float8 AS bytes, c.has_poster, c.created_at`;

export function recordingsQueries(sql: Sql) {
  const columns = RECORDING_COLUMNS(sql);
  return {
    /** Starts a recording row for a session going live, titled as the channel is now. */
    async create(r: { id: string; streamId: string; container: MediaContainer }): Promise<Recording> {
      const [row] = await sql<Recording[]>`
        INSERT INTO recordings (id, stream_id, title, container)
        SELECT ${r.id}, s.id, s.title, ${r.container} FROM streams s WHERE s.id = ${r.streamId}
        RETURNING ${columns}`;
      if (!row) throw new Error(`no channel ${r.streamId}`);
      return row;
    },

    async get(id: string): Promise<Recording | null> {
      const [row] = await sql<Recording[]>`SELECT ${columns} FROM recordings WHERE id = ${id}`;
      return row ?? null;
    },

    /** A channel's recordings, newest first. */
    async listByStream(streamId: string, limit = 100): Promise<Recording[]> {
      return sql<Recording[]>`
        SELECT ${columns} FROM recordings WHERE stream_id = ${streamId}
        ORDER BY started_at DESC LIMIT ${limit}`;
    },

    /** Recordings never finished (server killed while live): startup recovery repairs these. */
    async listUnfinished(): Promise<Recording[]> {
      return sql<Recording[]>`SELECT ${columns} FROM recordings WHERE ended_at IS NULL ORDER BY started_at`;
    },

    /** Updates what is known while writing (duration, size) without finishing. */
    async progress(id: string, fields: { durationMs: number; bytes: number }): Promise<void> {
      await sql`
        UPDATE recordings SET duration_ms = ${Math.round(fields.durationMs)}, bytes = ${Math.round(fields.bytes)}
        WHERE id = ${id}`;
    },

    /** Marks a recording finished; `endedAt` defaults to now. */
    async finish(
      id: string,
      fields: { durationMs: number; bytes: number; downloadReady: boolean; hasPoster: boolean; endedAt?: Date },
    ): Promise<void> {
      await sql`
        UPDATE recordings
        SET ended_at = ${fields.endedAt ?? sql`now()`}, duration_ms = ${Math.round(fields.durationMs)},
            bytes = ${Math.round(fields.bytes)}, download_ready = ${fields.downloadReady},
            has_poster = ${fields.hasPoster}
        WHERE id = ${id}`;
    },

    async delete(id: string): Promise<boolean> {
      return (await sql`DELETE FROM recordings WHERE id = ${id}`).count > 0;
    },

    /** Finished recordings that started before `before`, oldest first (retention). */
    async listFinishedBefore(before: Date): Promise<Recording[]> {
      return sql<Recording[]>`
        SELECT ${columns} FROM recordings WHERE ended_at IS NOT NULL AND started_at < ${before}
        ORDER BY started_at`;
    },

    /** Finished recordings, oldest first (quota). */
    async listFinishedOldestFirst(limit = 1000): Promise<Recording[]> {
      return sql<Recording[]>`
        SELECT ${columns} FROM recordings WHERE ended_at IS NOT NULL ORDER BY started_at LIMIT ${limit}`;
    },

    /** Total bytes of all recordings and clips (quota). */
    async totalBytes(): Promise<number> {
      const [row] = await sql<{ total: number }[]>`
        SELECT ((SELECT coalesce(sum(bytes), 0) FROM recordings)
              + (SELECT coalesce(sum(bytes), 0) FROM clips))::float8 AS total`;
      return row?.total ?? 0;
    },

    /** The owner's "Save past broadcasts" switch (default on). */
    async saveEnabled(streamId: string): Promise<boolean> {
      const [row] = await sql<{ saveRecordings: boolean }[]>`
        SELECT save_recordings FROM streams WHERE id = ${streamId}`;
      return row?.saveRecordings ?? false;
    },

    async setSaveEnabled(streamId: string, on: boolean): Promise<void> {
      await sql`UPDATE streams SET save_recordings = ${on}, updated_at = now() WHERE id = ${streamId}`;
    },
  };
}

export function clipsQueries(sql: Sql) {
  const columns = CLIP_COLUMNS(sql);
  const get = async (id: string): Promise<Clip | null> => {
    const [row] = await sql<Clip[]>`
      SELECT ${columns} FROM clips c LEFT JOIN users u ON u.id = c.creator_id WHERE c.id = ${id}`;
    return row ?? null;
  };
  return {
    get,

    async create(c: {
      id: string;
      streamId: string;
      creatorId: string;
      container: MediaContainer;
      durationMs: number;
      bytes: number;
      hasPoster: boolean;
    }): Promise<Clip> {
      await sql`
        INSERT INTO clips (id, stream_id, creator_id, container, duration_ms, bytes, has_poster)
        VALUES (${c.id}, ${c.streamId}, ${c.creatorId}, ${c.container}, ${Math.round(c.durationMs)},
                ${Math.round(c.bytes)}, ${c.hasPoster})`;
      const row = await get(c.id);
      if (!row) throw new Error(`clip ${c.id} vanished`);
      return row;
    },

    /** How many clips a user cut since `since` (per-user rate limit). */
    async countByCreatorSince(creatorId: string, since: Date): Promise<number> {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM clips WHERE creator_id = ${creatorId} AND created_at >= ${since}`;
      return row?.n ?? 0;
    },

    async delete(id: string): Promise<boolean> {
      return (await sql`DELETE FROM clips WHERE id = ${id}`).count > 0;
    },

    /** Clips created before `before`, oldest first (retention). */
    async listBefore(before: Date): Promise<Clip[]> {
      return sql<Clip[]>`
        SELECT ${columns} FROM clips c LEFT JOIN users u ON u.id = c.creator_id
        WHERE c.created_at < ${before} ORDER BY c.created_at`;
    },

    /** All clips, oldest first (quota). */
    async listOldestFirst(limit = 1000): Promise<Clip[]> {
      return sql<Clip[]>`
        SELECT ${columns} FROM clips c LEFT JOIN users u ON u.id = c.creator_id
        ORDER BY c.created_at LIMIT ${limit}`;
    },
  };
}
