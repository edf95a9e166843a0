import { connect, type Connection, type DatabaseOptions, type Sql } from './connect.ts';
import { migrate } from './migrate.ts';
import { usersQueries } from './users.ts';
import { sessionsQueries } from './sessions.ts';
import { streamsQueries } from './streams.ts';
import { streamKeysQueries } from './stream-keys.ts';
import { roomsQueries } from './rooms.ts';
import { chatQueries } from './chat.ts';
import { clusterQueries } from './cluster.ts';
import { clipsQueries, recordingsQueries } from './recordings.ts';

export type { DatabaseOptions, Sql } from './connect.ts';
export { DEFAULT_POOL_SIZE } from './connect.ts';
export type { User, UserWithPassword } from './users.ts';
export type { Stream, StreamStatus, NewChannel } from './streams.ts';
export type { StreamKeyRecord } from './stream-keys.ts';
export type { Room, RoomBan } from './rooms.ts';
export type { ChatMessage } from './chat.ts';
export type { NodeRecord } from './cluster.ts';
export type { Recording, Clip, MediaContainer } from './recordings.ts';
export { isUniqueViolation } from './errors.ts';
export { migrate, loadMigrations } from './migrate.ts';

export interface Database {
  readonly kind: Connection['kind'];
  readonly sql: Sql;
  readonly users: ReturnType<typeof usersQueries>;
  readonly sessions: ReturnType<typeof sessionsQueries>;
  readonly streams: ReturnType<typeof streamsQueries>;
  readonly streamKeys: ReturnType<typeof streamKeysQueries>;
  readonly rooms: ReturnType<typeof roomsQueries>;
  readonly chat: ReturnType<typeof chatQueries>;
  readonly cluster: ReturnType<typeof clusterQueries>;
  readonly recordings: ReturnType<typeof recordingsQueries>;
  readonly clips: ReturnType<typeof clipsQueries>;
  /** Resolves when the database answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function createDatabase(connection: Connection): Database {
  const { sql } = connection;
  return {
    kind: connection.kind,
    sql,
    users: usersQueries(sql),
    sessions: sessionsQueries(sql),
    streams: streamsQueries(sql),
    streamKeys: streamKeysQueries(sql),
    rooms: roomsQueries(sql),
    chat: chatQueries(sql),
    cluster: clusterQueries(sql),
    recordings: recordingsQueries(sql),
    clips: clipsQueries(sql),
    async ping() {
      await sql`SELECT 1`;
    },
    close: () => connection.close(),
  };
}

/** Connects (an embedded Postgres server unless `url` is given) and applies pending migrations. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const connection = await connect(options);
  try {
    const applied = await migrate(connection.sql);
    if (applied.length) options.logger?.info({ applied }, 'database migrated');
  } catch (err) {
    await connection.close();
    throw err;
  }
  return createDatabase(connection);
}
