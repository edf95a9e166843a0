/**
 * Fresh, isolated databases for tests: an in-memory embedded PGlite, or a new
 * database in the test run's Postgres server (see vitest-global-setup.ts).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { connect } from './connect.ts';
import { createDatabase, loadMigrations, migrate, type Database } from './index.ts';

export type TestDatabaseKind = 'embedded' | 'postgres';
export const TEST_DATABASE_KINDS: TestDatabaseKind[] = ['embedded', 'postgres'];

export async function openTestDatabase(kind: TestDatabaseKind): Promise<Database> {
  return kind === 'embedded' ? openEmbedded() : openPostgres();
}

/** Admin URL of the test run's Postgres server. */
export function testPostgresUrl(): string {
  return inject('postgresUrl');
}

/** Creates an empty database in the test Postgres server; returns its URL and a dropper. */
export async function createScratchPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = testPostgresUrl();
  const name = `wc_test_${randomBytes(6).toString('hex')}`;
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

/**
 * Creating and migrating PGlite takes ~5 s; loading a dump of an already
 * migrated one ~1 s. The dump is cached on disk, keyed by the migrations.
 */
async function openEmbedded(): Promise<Database> {
  const template = await migratedTemplate();
  const connection = await connect({ embeddedPath: ':memory:', embeddedTemplate: template });
  await migrate(connection.sql);
  return createDatabase(connection);
}

let templatePromise: Promise<Blob> | undefined;
function migratedTemplate(): Promise<Blob> {
  templatePromise ??= (async () => {
    const migrations = await loadMigrations();
    const hash = createHash('sha256').update(JSON.stringify(migrations)).digest('hex').slice(0, 16);
    const file = join(tmpdir(), `whipcast-pglite-template-${hash}.tar`);
    try {
      return new Blob([await readFile(file)]);
    } catch {
      const connection = await connect({ embeddedPath: ':memory:' });
      await migrate(connection.sql, migrations);
      const dump = await connection.dump!();
      await connection.close();
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, Buffer.from(await dump.arrayBuffer()));
      await rename(tmp, file);
      return dump;
    }
  })();
  return templatePromise;
}
