import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import type { Logger } from 'pino';
import { EmbeddedPostgres, type EmbeddedEndpoint } from './embedded.ts';

export type Sql = postgres.Sql;

/** Default pool size: connections are opened on demand and closed after `DEFAULT_IDLE_SECONDS` unused. */
export const DEFAULT_POOL_SIZE = 10;
export const DEFAULT_IDLE_SECONDS = 30;
/**
 * The embedded database's pool connections are closed after this long (once their query is done) and opened again
 * only when no open one is free. The `postgres` client hands each query to the connection idle longest, so a
 * query every few seconds keeps every connection a burst opened in use, never `idle_timeout` unused: each holds a
 * Postgres backend (≈ 16 MB RSS). Recycled, the pool shrinks to what the load needs at once.
 */
export const DEFAULT_EMBEDDED_LIFETIME_SECONDS = 60;

export interface DatabaseOptions {
  /** Postgres connection string. When absent an embedded Postgres server is started. */
  url?: string | undefined;
  /** Embedded database directory, or `:memory:` (a throwaway cluster in a temporary directory). Ignored when `url` is set. */
  embeddedPath?: string;
  /** The server secret: the embedded database's password is derived from it (a random one when absent and `:memory:`). */
  secret?: string;
  /** Pool size (most connections open at once). */
  maxConnections?: number;
  /** Seconds a pool connection stays open unused (default 30). */
  idleSeconds?: number;
  /** Embedded database: seconds a pool connection lives (default 60, {@link DEFAULT_EMBEDDED_LIFETIME_SECONDS}). */
  lifetimeSeconds?: number;
  logger?: Logger;
}

export interface Connection {
  sql: Sql;
  kind: 'postgres' | 'embedded';
  /** The embedded server, when this connection started one. */
  server?: EmbeddedPostgres;
  close(): Promise<void>;
}

const quietNotices = (): void => {};
/** Rows come back with camelCase keys (`started_at` → `startedAt`). */
const camelColumns = { column: { from: postgres.toCamel } };
const common = {
  onnotice: quietNotices,
  transform: camelColumns,
  connection: { application_name: 'whipcast' },
};

/** The embedded database's password: an HMAC of the server secret, so it is never stored anywhere but in the cluster (as a scram verifier). */
export function embeddedPassword(secret: string): string {
  return createHmac('sha256', secret).update('whipcast embedded database password v1').digest('base64url');
}

/** A pool on an embedded server's socket. */
export function embeddedClient(
  endpoint: EmbeddedEndpoint,
  database: string,
  max: number,
  idleSeconds = DEFAULT_IDLE_SECONDS,
  lifetimeSeconds = DEFAULT_EMBEDDED_LIFETIME_SECONDS,
): Sql {
  return postgres({ ...common, ...endpoint, database, max, idle_timeout: idleSeconds, max_lifetime: lifetimeSeconds });
}

export async function connect(options: DatabaseOptions): Promise<Connection> {
  const max = options.maxConnections ?? DEFAULT_POOL_SIZE;
  if (options.url) {
    const sql = postgres(options.url, { ...common, max, idle_timeout: options.idleSeconds ?? DEFAULT_IDLE_SECONDS });
    return { sql, kind: 'postgres', close: () => sql.end({ timeout: 5 }) };
  }
  return connectEmbedded(options.embeddedPath ?? ':memory:', max, options);
}

async function connectEmbedded(path: string, max: number, options: DatabaseOptions): Promise<Connection> {
  const ephemeral = path === ':memory:';
  if (!options.secret && !ephemeral)
    throw new Error('a persistent embedded database needs the server secret (its password derives from it)');
  const settings = {
    dataDir: ephemeral ? await mkdtemp(join(tmpdir(), 'whipcast-db-')) : path,
    password: options.secret ? embeddedPassword(options.secret) : randomBytes(24).toString('base64url'),
    ephemeral,
    // the pool, LISTEN connections, and room for an operator's psql
    maxConnections: max + 10,
    ...(options.logger ? { logger: options.logger.child({ component: 'db' }) } : {}),
  };
  let server = await EmbeddedPostgres.start(settings);
  let sql = embeddedClient(server.endpoint, 'postgres', max, options.idleSeconds, options.lifetimeSeconds);
  try {
    await sql`SELECT 1`;
  } catch (err) {
    await sql.end({ timeout: 1 });
    await server.close();
    if ((err as { code?: string }).code !== '28P01') throw err;
    // the cluster predates the current server secret: the data directory's owner may reset it
    options.logger?.warn({ dataDir: server.dataDir }, 'the server secret changed: resetting the embedded database password');
    await EmbeddedPostgres.resetPassword(settings);
    server = await EmbeddedPostgres.start(settings);
    sql = embeddedClient(server.endpoint, 'postgres', max, options.idleSeconds, options.lifetimeSeconds);
  }
  const running = server;
  return {
    sql,
    kind: 'embedded',
    server: running,
    async close() {
      await sql.end({ timeout: 5 });
      await running.close();
    },
  };
}
