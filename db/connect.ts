import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import postgres from 'postgres';
import type { Logger } from 'pino';

export type Sql = postgres.Sql;

export interface DatabaseOptions {
  /** Postgres connection string. When absent an embedded PGlite database is used. */
  url?: string | undefined;
  /** Embedded database directory, or `:memory:`. Ignored when `url` is set. */
  embeddedPath?: string;
  /** Embedded only: start from this data-directory dump (see PGlite `dumpDataDir`). Used by tests. */
  embeddedTemplate?: Blob;
  /** Pool size for a real Postgres. The embedded database always uses one connection. */
  maxConnections?: number;
  logger?: Logger;
}

export interface Connection {
  sql: Sql;
  kind: 'postgres' | 'embedded';
  /** Embedded only: a dump of the data directory. */
  dump?: () => Promise<Blob>;
  close(): Promise<void>;
}

const quietNotices = (): void => {};
/** Rows come back with camelCase keys (`started_at` → `startedAt`). */
const camelColumns = { column: { from: postgres.toCamel } };

export async function connect(options: DatabaseOptions): Promise<Connection> {
  if (options.url) {
    const sql = postgres(options.url, {
      max: options.maxConnections ?? 10,
      onnotice: quietNotices,
      transform: camelColumns,
      connection: { application_name: 'whipcast' },
    });
    return { sql, kind: 'postgres', close: () => sql.end({ timeout: 5 }) };
  }
  return connectEmbedded(options.embeddedPath ?? ':memory:', options.logger, options.embeddedTemplate);
}

/**
 * PGlite is single-threaded and pglite-socket interleaves protocol messages of
 * different connections outside explicit transactions (so one client's unnamed
 * portal could be bound by another's). One connection avoids that and costs
 * nothing: PGlite executes one query at a time anyway.
 */
async function connectEmbedded(path: string, logger?: Logger, template?: Blob): Promise<Connection> {
  const inMemory = path === ':memory:';
  if (!inMemory) await mkdir(path, { recursive: true });
  const db = await PGlite.create({ ...(inMemory ? {} : { dataDir: path }), ...(template ? { loadDataDir: template } : {}) });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  const [, port] = server.getServerConn().split(':');
  logger?.info({ path, port: Number(port) }, 'embedded database ready');
  const sql = postgres({
    host: '127.0.0.1',
    port: Number(port),
    database: 'postgres',
    username: 'postgres',
    max: 1,
    onnotice: quietNotices,
    transform: camelColumns,
  });
  return {
    sql,
    kind: 'embedded',
    dump: () => db.dumpDataDir('none'),
    async close() {
      await sql.end({ timeout: 5 });
      await server.stop();
      await db.close();
    },
  };
}
