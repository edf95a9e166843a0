/**
 * Fresh, isolated databases for tests: a new database in the test run's embedded Postgres server
 * (copied from a migrated template, so it is ready in milliseconds), or a new database in the test
 * run's Postgres server reached by URL like `DATABASE_URL` (see vitest-global-setup.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { connect, embeddedClient } from './connect.ts';
import { createDatabase, migrate, type Database } from './index.ts';
import { EMBEDDED_TEMPLATE } from './test-postgres.ts';

export type TestDatabaseKind = 'embedded' | 'postgres';
export const TEST_DATABASE_KINDS: TestDatabaseKind[] = ['embedded', 'postgres'];

export async function openTestDatabase(kind: TestDatabaseKind): Promise<Database> {
  return kind === 'embedded' ? openEmbedded() : openPostgres();
}

/** A new user (named `name`, random by default) with a channel and random stream-key material. */
export async function createTestChannel(db: Database, name = `u${randomBytes(4).toString('hex')}`) {
  const user = await db.users.create(name, 'scrypt$test');
  const streamId = randomUUID();
  const keyHash = randomBytes(32);
  await db.streams.createChannel({ streamId, ownerId: user.id, keyHash, keySalt: randomBytes(32) });
  return { user, streamId, keyHash };
}

/** Admin URL of the test run's Postgres server. */
export function testPostgresUrl(): string {
  return inject('postgresUrl');
}

const scratchName = () => `wc_test_${randomBytes(6).toString('hex')}`;

/** Creates an empty database in the test Postgres server; returns its URL and a dropper. */
export async function createScratchPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = testPostgresUrl();
  const name = scratchName();
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

async function openPostgres(): Promise<Database> {
  const scratch = await createScratchPostgres();
  const connection = await connect({ url: scratch.url, maxConnections: 5 });
  await migrate(connection.sql);
  return createDatabase({
    ...connection,
    async close() {
      await connection.close();
      await scratch.drop();
    },
  });
}

async function openEmbedded(): Promise<Database> {
  const endpoint = inject('embeddedDb');
  const name = scratchName();
  const admin = embeddedClient(endpoint, 'postgres', 1);
  await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${EMBEDDED_TEMPLATE}`);
  const sql = embeddedClient(endpoint, name, 5);
  await migrate(sql);
  return createDatabase({
    sql,
    kind: 'embedded',
    async close() {
      await sql.end({ timeout: 5 });
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  });
}
