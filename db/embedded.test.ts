/**
 * The embedded database as `npm start` opens it: a Postgres server in a data directory that keeps
 * its data across restarts, that no other local user and no process without the password can
 * reach, and that stops with whipcast (gracefully, or when whipcast is killed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, embeddedPassword, type Connection } from './connect.ts';
import { EmbeddedPostgres } from './embedded.ts';
import { migrate } from './migrate.ts';

const secret = () => randomBytes(32).toString('base64url');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
const asRoot = process.getuid?.() === 0;

/** TCP sockets the process listens on (inodes of its fds that /proc/net/tcp* lists in state LISTEN). */
function tcpListeners(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && inodes.has(cols[9]!)) found.push(cols[1]!);
    }
  }
  return found;
}

/** Runs a connection attempt in another process (as `user` when given); returns its outcome. */
function attempt(
  endpoint: { host: string; port: number },
  password: string | undefined,
  user?: string,
): { ok: boolean; code?: string; message?: string } {
  const driver = import.meta.resolve('postgres');
  const code = `
    const { default: postgres } = await import(${JSON.stringify(driver)});
    const sql = postgres({ host: ${JSON.stringify(endpoint.host)}, port: ${endpoint.port}, username: 'postgres',
      ${password === undefined ? '' : `password: ${JSON.stringify(password)},`} database: 'postgres', max: 1, connect_timeout: 5, onnotice() {} });
    try {
      const rows = await sql\`SELECT count(*)::int AS n FROM pg_roles\`;
      console.log(JSON.stringify({ ok: true, n: rows[0].n }));
    } catch (err) {
      console.log(JSON.stringify({ ok: false, code: err.code, message: err.message }));
    }
    await sql.end({ timeout: 1 }).catch(() => {});`;
  const argv = ['--input-type=module', '-e', code];
  const [file, args] = user
    ? ['setpriv', [`--reuid=${user}`, `--regid=${user === 'nobody' ? 'nogroup' : user}`, '--clear-groups', process.execPath, ...argv]]
    : [process.execPath, argv];
  const out = spawnSync(file, args, { encoding: 'utf8', timeout: 20_000, cwd: '/' });
  const last = out.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as { ok: boolean; code?: string };
  } catch {
    throw new Error(`probe failed (${out.status}): ${out.stdout}${out.stderr}`);
  }
}

describe('embedded database', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'whipcast-embedded-test-'));
    await chmod(dir, 0o711); // as root the server runs as `postgres`, which must be able to enter it
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its data across restarts, and its server stops on close', async () => {
    const key = secret();
    const path = join(dir, 'persist', 'postgres');
    const first = await connect({ embeddedPath: path, secret: key });
    await migrate(first.sql);
    await first.sql`INSERT INTO users (username, password_hash) VALUES ('kept', 'x')`;
    const pid = first.server!.pid;
    await first.close();
    expect(alive(pid)).toBe(false);

    const second = await connect({ embeddedPath: path, secret: key });
    try {
      expect(await migrate(second.sql)).toEqual([]);
      expect((await second.sql`SELECT username FROM users`).map((r) => r.username)).toEqual(['kept']);
    } finally {
      await second.close();
    }
  });

  it('follows a changed server secret (the data directory owner resets the password), keeping the data', async () => {
    const path = join(dir, 'rekey', 'postgres');
    const first = await connect({ embeddedPath: path, secret: secret() });
    await first.sql`CREATE TABLE marker (x int)`;
    await first.close();
    const second = await connect({ embeddedPath: path, secret: secret() });
    try {
      expect(await second.sql`SELECT count(*)::int AS n FROM marker`).toEqual([{ n: 0 }]);
    } finally {
      await second.close();
    }
  });

  describe('is unreachable to other local processes', () => {
    let conn: Connection;
    let key: string;
    beforeAll(async () => {
      key = secret();
      conn = await connect({ embeddedPath: join(dir, 'private', 'postgres'), secret: key });
    });
    afterAll(async () => {
      await conn?.close();
    });

    it('listens on no TCP port, only on a Unix socket in a 0700 directory', async () => {
      const server = conn.server!;
      expect(tcpListeners(server.pid)).toEqual([]);
      expect(await conn.sql`SHOW listen_addresses`).toEqual([{ listenAddresses: '' }]);
      const { stdout } = spawnSync('stat', ['-c', '%a', server.socketDir], { encoding: 'utf8' });
      expect(stdout.trim()).toBe('700');
    });

    it('the password (derived from the server secret) is what lets whipcast in', () => {
      const endpoint = conn.server!.endpoint;
      expect(endpoint.password).toBe(embeddedPassword(key));
      expect(attempt(endpoint, endpoint.password)).toMatchObject({ ok: true });
    });

    it('refuses a process without the password, or with a wrong one', () => {
      const endpoint = conn.server!.endpoint;
      // as root this probe runs as root: even a user who can open the socket cannot get in without the password
      expect(attempt(endpoint, undefined)).toMatchObject({ ok: false });
      expect(attempt(endpoint, 'guess')).toMatchObject({ ok: false, code: '28P01' });
      // the server's own OS user (postgres when whipcast runs as root) without the password
      if (asRoot) expect(attempt(endpoint, undefined, 'postgres')).toMatchObject({ ok: false, code: '28P01' });
    });

    it.runIf(asRoot)('refuses another OS user even with the password: it cannot open the socket', () => {
      const endpoint = conn.server!.endpoint;
      expect(attempt(endpoint, endpoint.password, 'nobody')).toMatchObject({ ok: false, code: 'EACCES' });
    });
  });

  it('stops when the whipcast process is killed without closing it', async () => {
    const connectUrl = new URL('./connect.ts', import.meta.url).href;
    const code = `
      const { connect } = await import(${JSON.stringify(connectUrl)});
      const c = await connect({ embeddedPath: ':memory:' });
      console.log(c.server.pid);
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => resolve(Number(b.toString().trim())));
      child.once('exit', (c) => reject(new Error(`exited ${c}`)));
    });
    expect(alive(pid)).toBe(true);
    child.kill('SIGKILL');
    expect(await waitUntil(() => !alive(pid), 10_000)).toBe(true);
  });

  it('says clearly when a data directory holds another Postgres version', async () => {
    const path = join(dir, 'old');
    const c = await connect({ embeddedPath: path, secret: secret() });
    await c.close();
    spawnSync('sh', ['-c', `echo 15 > ${join(path, 'PG_VERSION')}`]);
    await expect(EmbeddedPostgres.start({ dataDir: path, password: 'x' })).rejects.toThrow(/Postgres 15 cluster/);
  });
});
