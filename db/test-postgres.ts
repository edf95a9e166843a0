/**
 * The test run's database servers (vitest globalSetup): an embedded Postgres server with a migrated
 * template database, and a throwaway cluster of Debian's Postgres reached over TCP like
 * `DATABASE_URL` (TEST_DATABASE_URL instead when set). Fails loudly when no Debian Postgres server
 * binaries are installed: the test command installs them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedClient } from './connect.ts';
import { EmbeddedPostgres } from './embedded.ts';
import { migrate } from './migrate.ts';

/** The migrated database every embedded test database is created from (`CREATE DATABASE … TEMPLATE`). */
export const EMBEDDED_TEMPLATE = 'whipcast_template';

/** A throwaway embedded server for the test run, holding the migrated template database. */
export async function startTestEmbedded(): Promise<EmbeddedPostgres> {
  const server = await EmbeddedPostgres.start({
    dataDir: await mkdtemp(join(tmpdir(), 'whipcast-test-db-')),
    password: randomBytes(24).toString('base64url'),
    ephemeral: true,
    maxConnections: 300,
  });
  try {
    const admin = embeddedClient(server.endpoint, 'postgres', 1);
    await admin.unsafe(`CREATE DATABASE ${EMBEDDED_TEMPLATE}`);
    await admin.end();
    const template = embeddedClient(server.endpoint, EMBEDDED_TEMPLATE, 1);
    await migrate(template);
    await template.end();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

function findPgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0]) {
    throw new Error(
      'Postgres server binaries not found under /usr/lib/postgresql: run `bash scripts/test.sh` (installs Debian postgresql) or set TEST_DATABASE_URL',
    );
  }
  return join(root, versions[0], 'bin');
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface ThrowawayCluster {
  url: string;
  /** The server's main process (its backends are its children). */
  postmasterPid: number;
  stop(): void;
}

export async function startThrowawayCluster(): Promise<ThrowawayCluster> {
  const bin = findPgBin();
  const dir = mkdtempSync(join(tmpdir(), 'whipcast-pg-'));
  const asRoot = process.getuid?.() === 0;
  // Postgres refuses to run as root: run it as the Debian `postgres` user then.
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const result = spawnSync(file, argv as string[], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr || result.stdout}`);
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const port = await freePort();
  run('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`;
  run('pg_ctl', ['-D', join(dir, 'data'), '-o', opts, '-l', join(dir, 'log'), '-w', 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    postmasterPid: Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]),
    stop() {
      try {
        run('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
